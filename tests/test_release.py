"""Given code that reuses an earlier lesson's answer is derived from that lesson's solution cell;
the grader's and the benchmarks' own copies of an answer behave as that cell does."""

import re
import runpy
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

from seqcourse import cells
from seqcourse.paths import REPO_ROOT, lesson_notebook
from seqcourse_grader.reuse import TAG, reveal_table, sync_given, without_markers


def _copy_solutions(tmp_path):
    dest = tmp_path / "solutions"
    shutil.copytree(REPO_ROOT / "solutions", dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest


def _cell(path, grade_id):
    nb = nbformat.read(path, as_version=4)
    return nb, next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_every_given_copy_matches_its_source():
    reuses, drift = sync_given()
    assert drift == [], "\n".join(drift) + "\nRun `course release`."
    sources = {r.source for r in reuses}
    # the answers that later lessons show today; a new reuse must be declared, not pasted
    assert {"01-rnn-cell/SurnameRNN", "03-lstm/LSTMCellScratch", "05-seq2seq/Seq2Seq",
            "02-bptt/adding_problem", "01-rnn-cell/rnn_forward"} <= sources


def test_an_edited_answer_is_drift_until_release_copies_it(tmp_path):
    solutions = _copy_solutions(tmp_path)
    src = solutions / "01-rnn-cell" / "01-rnn-cell.ipynb"
    nb, cell = _cell(src, "SurnameRNN")
    cell.source = cell.source.replace("        ### END SOLUTION", "        self.extra = None  # edited\n"
                                      "        ### END SOLUTION", 1)
    nbformat.write(nb, src)
    _, drift = sync_given(solutions)
    assert drift == ["solutions/04-deep-rnn/given: the given code differs from its source "
                     "(03-lstm/LSTMCellScratch, 01-rnn-cell/SurnameRNN, 01-rnn-cell/train_step)"]
    sync_given(solutions, write=True)
    assert sync_given(solutions)[1] == []
    _, given = _cell(solutions / "04-deep-rnn" / "04-deep-rnn.ipynb", "given")
    assert "self.extra = None  # edited" in given.source
    assert "### BEGIN SOLUTION" not in given.source and "### END SOLUTION" not in given.source
    assert "def load_torch_lstm" in given.source, "the given cell's own code must stay"


def test_a_drifted_copy_in_the_given_cell_is_caught(tmp_path):
    solutions = _copy_solutions(tmp_path)
    path = solutions / "06-attention" / "06-attention.ipynb"
    nb, given = _cell(path, "given")
    given.source = given.source.replace("return (losses * mask).sum() / mask.sum()",
                                        "return (losses * mask).mean()")
    nbformat.write(nb, path)
    assert sync_given(solutions)[1], "a hand edit of given code must fail check-release"


def test_a_reused_solution_cell_must_carry_the_tag(tmp_path):
    solutions = _copy_solutions(tmp_path)
    path = solutions / "03-lstm" / "03-lstm.ipynb"
    nb, cell = _cell(path, "LSTMCellScratch")
    cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if t != TAG]
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="lacks the tag"):
        sync_given(solutions)


def test_readme_says_what_each_lessons_given_code_reveals():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- reveals:[^\n]*-->\n(.*?)\n<!-- /reveals -->", readme, re.S)
    assert block, "README.md lost its <!-- reveals --> block"
    assert block.group(1).strip() == reveal_table(), \
        "README's table of revealed answers is out of date: paste seqcourse_grader.reuse.reveal_table()"


def test_stored_progress_bars_show_their_final_state():
    """A stored tqdm bar is a widget whose plain-text copy says "0%": every solution notebook keeps
    its bars as their final text instead (``course run-solution`` does it)."""
    import nbformat

    from seqcourse.paths import lesson_notebook
    from seqcourse_grader.nbg import assignments
    from seqcourse_grader.outputs import finalize_progress_bars, live_widgets

    for aid in assignments():
        nb = nbformat.read(lesson_notebook(aid), as_version=4)
        assert live_widgets(nb) == 0, f"{aid}: stored progress bars render as 0%: run `course run-solution {aid}`"
    # the text is rebuilt from the widget state a run saves in the notebook's metadata
    ref = "IPY_MODEL_"
    state = {"box": {"state": {"children": [ref + "l", ref + "b", ref + "r"]}},
             "l": {"state": {"value": "dates:\u2007100%"}}, "b": {"state": {"value": 12.0, "max": 12.0}},
             "r": {"state": {"value": "\u200712/12\u2007[00:03&lt;00:00]"}}}
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": state}}})
    nb.cells = [nbformat.v4.new_code_cell("fit()", outputs=[nbformat.v4.new_output(
        "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "box"},
                              "text/plain": "dates:   0%|          | 0/12"})])]
    assert finalize_progress_bars(nb) == 1 and live_widgets(nb) == 0
    assert nb.cells[0].outputs[0].text == "dates: 100%|██████████| 12/12 [00:03<00:00]\n"


def _solution(lesson: str, grade_id: str):
    """The reference answer of a solution cell, run on its own."""
    nb = nbformat.read(lesson_notebook(lesson), as_version=4)
    namespace = {"torch": torch}
    exec(without_markers(next(c for c in nb.cells if cells.grade_id(c) == grade_id).source), namespace)
    return namespace[grade_id]


def test_copies_of_lesson_02_generators_behave_as_the_solution():
    bench = runpy.run_path(str(REPO_ROOT / "bench" / "long_lag.py"))
    copies = {"adding_problem": [bench["adding_problem"]], "delay_task": [bench["delay_task"]]}
    cases = {"adding_problem": [(1, 2), (5, 7), (16, 50)], "delay_task": [(1, 3, 1, 4), (6, 20, 5, 8), (4, 9, 0, 2)]}
    for name, fns in copies.items():
        reference = _solution("02-bptt", name)
        for fn in fns:
            for seed, args in enumerate(cases[name]):
                got, want = fn(*args, torch.Generator().manual_seed(seed)), \
                    reference(*args, torch.Generator().manual_seed(seed))
                assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True)), \
                    f"{fn.__module__}.{name}{args} differs from the solution cell 02-bptt/{name}"


# ------------------------------------------------------------------ release by schedule
def _schedule(tmp_path, **deadlines) -> Path:
    path = tmp_path / "schedule.toml"
    path.write_text("[deadlines]\n" + "".join(f'"{k}" = {v}\n' for k, v in deadlines.items()))
    return path


def test_a_lesson_that_shows_earlier_answers_waits_for_their_deadline(tmp_path):
    import datetime

    from seqcourse_grader.schedule import held_back

    now = datetime.datetime(2027, 2, 10, tzinfo=datetime.timezone.utc)
    unset = held_back(["01-rnn-cell", "02-bptt"], now=now, schedule=tmp_path / "none.toml")
    assert len(unset) == 1 and unset[0].startswith("02-bptt's given code shows the answers of 01-rnn-cell (rnn_cell, rnn_forward)")
    assert "not set" in unset[0]
    later = held_back(["02-bptt"], now=now, schedule=_schedule(tmp_path, **{"01-rnn-cell": "2027-02-20"}))
    assert "2027-02-20 23:59" in later[0]
    assert held_back(["02-bptt"], now=now, schedule=_schedule(tmp_path, **{"01-rnn-cell": "2027-02-01T12:00:00Z"})) == []
    # lesson 04 shows lessons 01 and 03: both must be due
    both = held_back(["04-deep-rnn"], now=now, schedule=_schedule(tmp_path, **{"01-rnn-cell": "2027-02-01"}))
    assert [line.split(" shows the answers of ")[1].split(" ")[0] for line in both] == ["03-lstm"]


def test_the_edition_holds_only_the_lessons_released(tmp_path, monkeypatch):
    from seqcourse_grader import schedule
    from seqcourse_grader.edition import build_student_edition

    monkeypatch.setattr(schedule, "SCHEDULE", tmp_path / "none.toml")
    with pytest.raises(PermissionError, match="02-bptt's given code shows the answers of 01-rnn-cell"):
        build_student_edition(tmp_path / "too-early", ["01-rnn-cell", "02-bptt"])
    assert not (tmp_path / "too-early").exists()
    out = build_student_edition(tmp_path / "first", ["01-rnn-cell"])
    assert sorted(p.name for p in (out / "lessons").iterdir()) == ["01-rnn-cell"]
    readme = (out / "README.md").read_text()
    assert "lessons/01-rnn-cell/" in readme and "lessons/02-bptt/" not in readme and "(1 of 7)" in readme
    assert "course site" in readme   # no address given: the README says the site exists
    early = build_student_edition(tmp_path / "early", ["01-rnn-cell", "02-bptt"], reveal_early=True,
                                  site_url="https://course.example.org/seqcourse/")
    assert sorted(p.name for p in (early / "lessons").iterdir()) == ["01-rnn-cell", "02-bptt"]
    assert "<https://course.example.org/seqcourse/>" in (early / "README.md").read_text()


def test_nbgrader_release_follows_the_schedule(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, SEQCOURSE_EXCHANGE=str(tmp_path / "exchange"), SEQCOURSE_COURSE_ID="schedule-test")
    env.pop("SEQCOURSE_REVEAL_EARLY", None)
    nbgrader = [str(Path(sys.executable).parent / "nbgrader"), "release_assignment"]
    refused = subprocess.run(nbgrader + ["02-bptt"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "shows the answers of 01-rnn-cell" in refused.stdout + refused.stderr
    assert not (tmp_path / "exchange" / "schedule-test" / "outbound" / "02-bptt").exists()
    released = subprocess.run(nbgrader + ["02-bptt"], cwd=REPO_ROOT, env=dict(env, SEQCOURSE_REVEAL_EARLY="1"),
                              capture_output=True, text=True, timeout=120)
    assert released.returncode == 0, released.stdout + released.stderr
    assert (tmp_path / "exchange" / "schedule-test" / "outbound" / "02-bptt" / "02-bptt.ipynb").is_file()


def test_every_graded_run_names_its_graded_cell_and_exercise():
    """check_bar's graded= and exercise= agree with the notebook: the graded cell grades a run
    charged to that exercise, whose heading has that number (course check prints them)."""
    import json

    found = 0
    for path in sorted((REPO_ROOT / "solutions").glob("*/*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        by_id, titles = cells.by_grade_id(nb), cells.exercise_titles(nb)
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            for graded, number, exercise in re.findall(
                    r'graded="(\w+)", exercise="exercise (\d+) \((\w+)\)"', source):
                found += 1
                assert cells.seqcourse_meta(by_id[graded]).get("exercise") == exercise, (path.name, graded)
                assert titles[exercise] == f"exercise {number}", (path.name, exercise, titles[exercise])
        runs = [gid for gid, c in by_id.items() if cells.seqcourse_meta(c).get("exercise")]
        assert all(f'graded="{gid}"' in json.dumps(nb).replace('\\"', '"') for gid in runs), (path.name, runs)
    assert found >= 11
