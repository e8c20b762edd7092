"""Grades to Canvas: the gradebook-import CSV built from grade_rows' rows and a Canvas roster.

Fast: the rows are written by hand, nothing is executed or graded. tests/data/canvas_roster.csv is
shaped like Canvas's "Export Entire Gradebook" (a BOM, CRLF, the Points Possible row, an existing
assignment and read-only score columns, two sections, Canvas's test student without SIS ids).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from seqcourse_grader import course as classroom
from seqcourse_grader import gradebook
from seqcourse_grader.lms import POINTS_POSSIBLE, canvas_table, read_roster, write_table

ROSTER = Path(__file__).parent / "data" / "canvas_roster.csv"
AID = "01-rnn-cell"
HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", AID]


def row(student, status, score):
    return dict(student=student, status=status, reasons="", notes="", score=score, max_score=18.0)


ROWS = [
    row("alovelace", classroom.STATUS_GRADED, 17.5),
    row("aturing", classroom.STATUS_GRADED, 0),  # a real 0, not a blank
    row("ghopper", classroom.STATUS_REVIEW, 12.0),  # scored, but someone must look: blank
    row("en42", classroom.STATUS_REVIEW, ""),  # never scored: blank
    row("jdoe", classroom.STATUS_GRADED, 14.0),  # not in the roster: reported
]  # cshannon (in the roster) never submitted: blank

EXPECTED = [
    HEADER,
    [POINTS_POSSIBLE, "", "", "", "", "18"],
    ["Lovelace, Ada", "20001", "U0001", "alovelace", "Sequence Models 101 - A", "17.5"],
    ["Turing, Alan", "20002", "U0002", "aturing", "Sequence Models 101 - A", "0"],
    ["Hopper, Grace", "20003", "U0003", "ghopper", "Sequence Models 101 - B", ""],
    ["Noether, Emmy", "20004", "U0004", "en42", "Sequence Models 101 - B", ""],
    ["Shannon, Claude", "20005", "U0005", "cshannon", "Sequence Models 101 - B", ""],
    ["Student, Test", "20099", "", "", "Sequence Models 101 - A", ""],
]


def read_back(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_roster_skips_bom_and_points_possible():
    roster = read_roster(ROSTER)
    assert [r["SIS Login ID"] for r in roster] == ["alovelace", "aturing", "ghopper", "en42", "cshannon", ""]
    assert list(roster[0])[0] == "Student"  # the BOM is not part of the first column's name


def test_canvas_csv(tmp_path):
    export = canvas_table(ROWS, read_roster(ROSTER), AID, 18.0)
    out = write_table(export.table, tmp_path / "canvas.csv")
    assert read_back(out) == EXPECTED
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert export.scored == 2
    assert export.review == ["ghopper", "en42"]
    assert export.missing == ["Shannon, Claude", "Student, Test"]
    assert export.unmatched == ["jdoe"]


def test_match_on_other_columns_and_case():
    roster = read_roster(ROSTER)
    by_user = canvas_table([row("u0002", classroom.STATUS_GRADED, 3)], roster, "Lesson 1 (77)", 18, "sis_user")
    assert by_user.table[0][-1] == "Lesson 1 (77)"
    assert [r[-1] for r in by_user.table[2:]] == ["", "3", "", "", "", ""]
    by_id = canvas_table([row("20005", classroom.STATUS_GRADED, 18.0)], roster, AID, 18, "id")
    assert [r[-1] for r in by_id.table[2:]] == ["", "", "", "", "18", ""] and not by_id.unmatched
    with pytest.raises(ValueError, match="match must be one of"):
        canvas_table([], roster, AID, 18, "email")


def test_roster_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Student,ID,SIS User ID\nAda,1,U1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="SIS Login ID, Section"):
        read_roster(bad)
    twice = read_roster(ROSTER) + [dict(read_roster(ROSTER)[0])]
    with pytest.raises(ValueError, match="share the SIS Login ID 'alovelace'"):
        canvas_table(ROWS, twice, AID, 18)


@pytest.fixture
def course_dir(tmp_path, monkeypatch):
    """A course folder _course accepts, and grade_rows answering ROWS without a gradebook."""
    (tmp_path / "course" / "solutions" / AID).mkdir(parents=True)
    (tmp_path / "course" / "solutions" / AID / "x.ipynb").write_text("{}")
    calls = []

    def fake_grade_rows(course, aid):
        calls.append(aid)
        return ["student", "status", "reasons", "notes", "score", "max_score"], ROWS, {"a": 10.0, "b": 8.0}

    monkeypatch.setattr(gradebook, "grade_rows", fake_grade_rows)
    base = ["export", AID, "--course", str(tmp_path / "course"), "--db-url",
            f"sqlite:///{tmp_path / 'gradebook.db'}", "--plot", "none"]
    return base, calls


def test_command_line(course_dir, tmp_path, capsys, monkeypatch):
    from seqcourse_grader.cli import main

    base, calls = course_dir
    out = tmp_path / "out" / "c.csv"
    assert main(base + ["--format", "canvas", "--roster", str(ROSTER), "-o", str(out)]) == 1
    assert read_back(out) == EXPECTED and calls == [AID]
    said = capsys.readouterr().out
    assert "2 scores; blank: 2 submissions that need review, 2 roster students" in said
    assert "WARNING: 1 submitters are not in the roster (by --match sis_login)" in said and "jdoe" in said

    monkeypatch.setattr(gradebook, "grade_rows", lambda course, aid: ([], ROWS[:4], {"a": 18.0}))
    monkeypatch.chdir(tmp_path)
    assert main(base + ["--format", "canvas", "--roster", str(ROSTER), "--column", "RNN cell (4242)"]) == 0
    table = read_back(tmp_path / f"{AID}-canvas.csv")
    assert table[0][-1] == "RNN cell (4242)" and table[1][-1] == "18"
    assert "WARNING" not in capsys.readouterr().out


def test_command_line_errors(course_dir, tmp_path):
    from seqcourse_grader.cli import main

    base, calls = course_dir
    with pytest.raises(SystemExit, match="--format canvas needs --roster"):
        main(base + ["--format", "canvas"])
    bad = tmp_path / "bad.csv"
    bad.write_text("\ufeffStudent,ID,SIS User ID,Section\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"lacks the column\(s\) SIS Login ID:"):
        main(base + ["--format", "canvas", "--roster", str(bad)])
    with pytest.raises(SystemExit, match="No such file"):
        main(base + ["--format", "canvas", "--roster", str(tmp_path / "nowhere.csv")])
    assert calls == []  # the roster is checked before the gradebook is read
    with pytest.raises(SystemExit) as exit_:  # argparse: not a choice
        main(["export", AID, "--format", "canvas", "--match", "email"])
    assert exit_.value.code == 2
