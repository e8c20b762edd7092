"""The lessons in Russian, Persian and Thai: same code, same grading, never an outdated translation.

- Every catalogue entry that is shown keeps the English's formulas, code, links and headings.
- A translated notebook differs from the English only in Markdown prose: code cells, grade ids and
  the code cells' checksums are the English edition's, for every lesson and language.
- A cell whose English changed is shown in English with a notice in the reader's language, listed
  by `course translations status`, and `course translations update` keeps the old translation as
  fuzzy with the previous English.
- Lesson 01 in each language is graded through `course autograde`'s engine: the reference answers
  get full marks, the stub 0, and neither is noted for edited cells.
"""

from __future__ import annotations

import shutil

import nbformat
import polib
import pytest

from seqcourse import cells
from seqcourse.paths import REPO_ROOT, lesson_notebook
from seqcourse_grader.nbg import assignments
from seqcourse_grader.translations import (
    LANGUAGES,
    NOTICES,
    TRANSLATIONS,
    catalogue_path,
    damage,
    status,
    translate_notebook,
    update,
)


def _entries(lang: str, aid: str):
    po = polib.pofile(str(catalogue_path(lang, aid))) if catalogue_path(lang, aid).is_file() else []
    return [e for e in po if e.msgstr and not e.obsolete and "fuzzy" not in e.flags]


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_shown_translation_keeps_the_formulas_code_and_structure(lang):
    problems, shown = [], 0
    for aid in assignments():
        for e in _entries(lang, aid):
            shown += 1
            why = damage(e.msgid, e.msgstr)
            if why:
                problems.append(f"{lang}/{aid} {e.msgctxt}: {why}")
    print(f"\n{lang}: {shown} cells translated")
    assert shown > 0, f"no {lang} translation at all"
    assert problems == [], "\n".join(problems)


def test_translated_notebooks_keep_the_code_grade_ids_and_checksums():
    for aid in assignments():
        english = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
        for lang in LANGUAGES:
            nb = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
            report = translate_notebook(nb, lang, aid)
            assert len(nb.cells) == len(english.cells)
            for a, b in zip(english.cells, nb.cells, strict=True):
                assert (a.cell_type, cells.grade_id(a)) == (b.cell_type, cells.grade_id(b))
                if a.cell_type == "code":
                    assert a.source == b.source and a.metadata == b.metadata, f"{lang}/{aid}: code changed"
            assert report.broken == [], report.broken


def test_a_changed_english_cell_is_shown_in_english_with_a_notice(tmp_path):
    root = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, root)
    aid, lang = "01-rnn-cell", "ru"
    nb = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
    target = next(c for c in nb.cells if c.cell_type == "markdown" and c.get("id") in
                  {e.msgctxt for e in _entries(lang, aid)})
    # the English moves on: the catalogue still holds the old English and its translation
    po = polib.pofile(str(catalogue_path(lang, aid, root)))
    entry = next(e for e in po if e.msgctxt == target["id"])
    old_translation, english = entry.msgstr, target.source
    entry.msgid = entry.msgid + "\nA sentence the translation does not have yet."
    po.save(str(catalogue_path(lang, aid, root)))
    report = translate_notebook(nb, lang, aid, root)
    assert target["id"] in report.stale
    shown = next(c for c in nb.cells if c.get("id") == target["id"]).source
    assert NOTICES["stale"][lang] in shown and shown.endswith(english) and old_translation not in shown
    assert any(f"{lang}/{aid}.po" in line and "stale" in line for line in status(root))
    # `course translations update` puts the current English in, keeps the translation as fuzzy
    added, changed, removed = update(lang, aid, root)
    assert changed == 1 and removed == 0
    entry = next(e for e in polib.pofile(str(catalogue_path(lang, aid, root))) if e.msgctxt == target["id"])
    assert "fuzzy" in entry.flags and entry.msgstr == old_translation
    assert entry.msgid == english and entry.previous_msgid.endswith("does not have yet.")


def test_a_translation_that_changes_a_formula_is_not_shown(tmp_path):
    root = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, root)
    aid, lang = "01-rnn-cell", "fa"
    po = polib.pofile(str(catalogue_path(lang, aid, root)))
    entry = next(e for e in po if e.msgstr and "$" in e.msgid and "fuzzy" not in e.flags)
    entry.msgstr = entry.msgstr.replace("$", "", 2)
    po.save(str(catalogue_path(lang, aid, root)))
    nb = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
    report = translate_notebook(nb, lang, aid, root)
    assert any(b.startswith(entry.msgctxt) for b in report.broken)
    assert next(c for c in nb.cells if c.get("id") == entry.msgctxt).source.endswith(entry.msgid)


@pytest.mark.pipeline
def test_each_language_is_graded_like_the_english(tmp_path):
    from seqcourse_grader.catalogue import student_submission
    from seqcourse_grader.classroom import grade_class
    from seqcourse_grader.course import STATUS_GRADED, Course
    from seqcourse_grader.result import Limits

    aid = "01-rnn-cell"
    for edition in ("solutions", "lessons"):
        shutil.copytree(REPO_ROOT / edition / aid, tmp_path / edition / aid)
    course = Course(tmp_path)
    for lang in LANGUAGES:
        for kind, nb in (("correct", student_submission(aid)),
                         ("stub", nbformat.read(lesson_notebook(aid, "lessons"), as_version=4))):
            translate_notebook(nb, lang, aid)
            folder = course.submitted / f"{lang}-{kind}" / aid
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / course.notebook_name(aid))
    results = grade_class(course, aid, workers=2, limits=Limits(cell_timeout=120), progress=False)
    for r in results:
        assert r.status == STATUS_GRADED, (r.student, r.reasons)
        full = sum(r.max_scores.values())
        assert r.score == (full if r.student.endswith("correct") else 0), (r.student, r.score, r.messages)
        assert not any("edited locked cells" in n for n in r.notes), (r.student, r.notes)
    assert len(results) == 2 * len(LANGUAGES)


# ------------------------------------------------------------------ the checks' messages
def _message_catalogue(lang: str) -> list:
    from seqcourse.i18n import LOCALE_DIR

    return [e for e in polib.pofile(str(LOCALE_DIR / f"{lang}.po")) if not e.obsolete]


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_check_message_is_translated_with_its_fields_and_code(lang):
    import re

    from seqcourse.i18n import fields
    from seqcourse_grader.translations import learner_messages

    entries = {e.msgid: e for e in _message_catalogue(lang)}
    missing = [m for m in learner_messages() if m not in entries or not entries[m].msgstr]
    assert missing == [], f"{len(missing)} check messages not in seqcourse/locale/{lang}.po: {missing[:5]}"
    broken = [e.msgid for e in entries.values() if e.msgstr and (
        fields(e.msgstr) != fields(e.msgid)
        or sorted(re.findall(r"`[^`]+`", e.msgstr)) != sorted(re.findall(r"`[^`]+`", e.msgid)))]
    assert broken == [], f"translations that lost a {{field}} or a code span: {broken[:5]}"


def test_the_checks_speak_the_learner_s_language(monkeypatch):
    import torch

    from seqcourse import checks, guard, i18n

    guard.capture()

    def failure(**kwargs):
        with pytest.raises(checks.CheckError) as caught:
            checks.check_shape(torch.zeros(2, 3), (3, 2), "h_t", **kwargs)
        return str(caught.value)

    hint = "PyTorch stores W transposed: (H, E), so copy W.T"   # a hint of lesson 01's visible tests
    english = failure(hint=hint)
    assert english.startswith("Wrong shape for h_t: got (2, 3), expected (3, 2).") and hint in english
    for lang in LANGUAGES:
        monkeypatch.setenv("SEQCOURSE_LANGUAGE", lang)
        translated = failure(hint=hint)
        table = i18n.catalogue(lang)
        assert table["Wrong shape for {name}: got {got}, expected {expected}."].format(
            name="h_t", got=(2, 3), expected=(3, 2)) in translated, translated
        assert table[hint] in translated and "Wrong shape" not in translated, translated
    monkeypatch.setenv("SEQCOURSE_LANGUAGE", "en")
    assert failure(hint=hint) == english


def test_a_translated_edition_says_its_language(tmp_path):
    from seqcourse_grader.edition import build_student_edition

    out = build_student_edition(tmp_path / "fa", ["01-rnn-cell"], language="fa")
    assert (out / "LANGUAGE").read_text().strip() == "fa"
    assert (out / "seqcourse" / "locale" / "fa.po").is_file()
    nb = nbformat.read(out / "lessons" / "01-rnn-cell" / "01-rnn-cell.ipynb", as_version=4)
    assert nb.cells[0].source.startswith('<div dir="rtl" lang="fa">')


def test_no_check_message_is_an_f_string():
    """A message built by an f-string exists only at run time and cannot be looked up in a
    catalogue: the lessons pass templates with keyword values instead."""
    import ast

    found = []
    for aid in assignments():
        nb = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                name = getattr(node, "func", None) and (getattr(node.func, "id", None) or getattr(node.func, "attr", ""))
                if not (isinstance(node, ast.Call) and name and name.startswith("check_")):
                    continue
                args = [k.value for k in node.keywords if k.arg in ("hint", "what", "message", "exercise")]
                args += node.args[1:3] if name in ("check_true", "check_bar") else []
                found += [f"{aid} {cell.get('id')}: {ast.unparse(a)[:60]}" for a in args if isinstance(a, ast.JoinedStr)]
    assert found == [], "\n".join(found)
