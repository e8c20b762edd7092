"""The lessons in Russian, Persian and Thai, from gettext catalogues keyed by the English text.

One catalogue per language and lesson, ``translations/<lang>/<lesson>.po``: one entry per Markdown
cell of the student edition, its context the cell's id, its ``msgid`` the English text exactly as
``lessons/`` has it, its ``msgstr`` the translation. The English stays the one source: the code
cells are never translated, and a Markdown cell is shown translated only while its entry's
``msgid`` is still the cell's English and its formulas, code, links and HTML are the English's
(:func:`protected_spans`). Otherwise the reader gets the English with a notice in their language
(:data:`NOTICES`), never an outdated translation. ``course translations update`` brings the
catalogues up to the English (a changed cell keeps its old translation as fuzzy, with the previous
English, for the translator); ``course check-release`` lists what is stale or missing.
"""

from __future__ import annotations

import collections
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from seqcourse import cells
from seqcourse.i18n import LANGUAGES
from seqcourse.paths import REPO_ROOT, lesson_notebook

TRANSLATIONS = REPO_ROOT / "translations"
RTL = {"fa"}
NOTICES = {
    "stale": {
        "ru": "Перевод этой части устарел: ниже английский оригинал, пока перевод не обновят.",
        "fa": "ترجمهٔ این بخش قدیمی شده است؛ تا به‌روزرسانی ترجمه، متن اصلی انگلیسی در زیر آمده است.",
        "th": "คำแปลของส่วนนี้ล้าสมัยแล้ว ด้านล่างคือต้นฉบับภาษาอังกฤษจนกว่าจะมีการปรับปรุงคำแปล",
    },
    "missing": {
        "ru": "Эта часть ещё не переведена: ниже английский оригинал.",
        "fa": "این بخش هنوز ترجمه نشده است؛ متن اصلی انگلیسی در زیر آمده است.",
        "th": "ส่วนนี้ยังไม่ได้แปล ด้านล่างคือต้นฉบับภาษาอังกฤษ",
    },
}

_FENCE = re.compile(r"```.*?```", re.S)
_MATH2 = re.compile(r"\$\$.*?\$\$", re.S)
_MATH1 = re.compile(r"(?<![\\$])\$(?!\$)(?:[^$\\]|\\.)+?\$")
_CODE = re.compile(r"`[^`]+`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def protected_spans(text: str) -> collections.Counter:
    """What a translation must keep exactly: fenced code, display and inline maths, inline code,
    link targets and HTML tags."""
    out: collections.Counter = collections.Counter()
    rest = text
    for rx in (_FENCE, _MATH2, _CODE, _MATH1):
        out.update(rx.findall(rest))
        rest = rx.sub(" ", rest)
    out.update("link:" + target for target in _LINK.findall(text))
    out.update(_TAG.findall(rest))
    return out


def _shape(text: str) -> tuple[int, int]:
    lines = _FENCE.sub("", text).splitlines()
    return (sum(1 for ln in lines if re.match(r"#+ ", ln)),
            sum(1 for ln in lines if re.match(r"\s*([-*]|\d+\.) ", ln)))


def damage(english: str, translated: str) -> str | None:
    """Why ``translated`` cannot stand for ``english`` (a formula, code span, link or heading
    changed), or None."""
    a, b = protected_spans(english), protected_spans(translated)
    if a != b:
        lost, added = sorted((a - b).elements())[:3], sorted((b - a).elements())[:3]
        return f"changes what must stay as written: lost {lost}, added {added}"
    if _shape(english) != _shape(translated):
        return f"headings and list items {_shape(translated)}, the English has {_shape(english)}"
    return None


def catalogue_path(lang: str, aid: str, root: Path | None = None) -> Path:
    return Path(root or TRANSLATIONS) / lang / f"{aid}.po"


def load(lang: str, aid: str, root: Path | None = None):
    """The lesson's catalogue in ``lang``, or None. Parsed once per version of the file: grading
    asks for it for every Markdown cell of a translated submission."""
    path = catalogue_path(lang, aid, root)
    return _parsed(str(path), path.stat().st_mtime_ns) if path.is_file() else None


@functools.lru_cache(maxsize=64)
def _parsed(path: str, mtime_ns: int):
    import polib

    return polib.pofile(path)


@dataclass
class Applied:
    lang: str
    aid: str
    translated: int = 0
    stale: list[str] = field(default_factory=list)     # cell ids shown in English: the English changed
    missing: list[str] = field(default_factory=list)   # cell ids with no translation yet
    broken: list[str] = field(default_factory=list)    # "<id>: why": a translation that changed a formula...


def _english_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "markdown"]


def _ltr_maths(text: str) -> str:
    """Every formula of ``text`` in a left-to-right box: MathJax lays a formula out in the
    direction it inherits, so in right-to-left prose its symbols would run backwards. Display
    maths get a block, inline maths a span; code (fenced or inline) is left as it is."""
    out = []
    pieces = re.split(f"({_FENCE.pattern}|{_CODE.pattern})", text, flags=re.S)
    for k, piece in enumerate(pieces):
        if k % 2:            # code
            out.append(piece)
            continue
        piece = _MATH2.sub(lambda m: f'\n<div dir="ltr">\n\n{m.group(0)}\n\n</div>\n', piece)
        piece = _MATH1.sub(lambda m: f'<span dir="ltr">{m.group(0)}</span>', piece)
        out.append(piece)
    return "".join(out)


def wrap_for_language(lang: str, text: str) -> str:
    """Persian reads right to left: the text in an RTL block, its formulas in left-to-right boxes
    (:func:`_ltr_maths`); code and tables are isolated by the site's stylesheet and by the
    browser's bidi rules. Other languages: the text as it is."""
    return f'<div dir="rtl" lang="{lang}">\n\n{_ltr_maths(text)}\n\n</div>' if lang in RTL else text


def translate_notebook(nb, lang: str, aid: str, root: Path | None = None) -> Applied:
    """Translate ``nb`` (a student-edition notebook of lesson ``aid``) in place: every Markdown
    cell whose catalogue entry is current; the English with a notice for the others. Code cells,
    grade ids and code checksums are untouched; a locked Markdown cell's checksum is recomputed
    (nbgrader's validate compares it; grading restores the English from the gradebook)."""
    from nbgrader.utils import compute_checksum

    if lang not in LANGUAGES:
        raise ValueError(f"no language {lang!r}; the course's languages: en, {', '.join(LANGUAGES)}")
    po = load(lang, aid, root)
    entries = {e.msgctxt: e for e in po if not e.obsolete} if po is not None else {}
    report = Applied(lang, aid)
    for cell in _english_cells(nb):
        english, entry = cell.source, entries.get(cell.get("id"))
        if entry is not None and entry.msgstr and "fuzzy" not in entry.flags and entry.msgid == english:
            why = damage(english, entry.msgstr)
            if why is None:
                cell.source = wrap_for_language(lang, entry.msgstr)
                report.translated += 1
            else:
                report.broken.append(f"{cell.get('id')}: {why}")
        elif entry is not None and entry.msgstr:
            report.stale.append(cell.get("id"))
        else:
            report.missing.append(cell.get("id"))
        if cell.source == english:
            kind = "missing" if entry is None or not entry.msgstr else "stale"
            cell.source = wrap_for_language(lang, f"> ⚠ {NOTICES[kind][lang]}") + "\n\n" + english
        if cells.is_locked(cell) and "checksum" in cells.meta(cell):
            cell.metadata["nbgrader"]["checksum"] = compute_checksum(cell)
    nb.metadata.setdefault("seqcourse", {})["language"] = lang
    return report


def is_current_translation(submitted: str, english_cell, aid: str, lang: str) -> bool:
    """Whether a submitted Markdown cell is ``english_cell`` as the ``lang`` edition shows it."""
    if lang not in LANGUAGES:
        return False
    holder = nbformat.v4.new_notebook(cells=[nbformat.from_dict(dict(english_cell))])
    translate_notebook(holder, lang, aid)
    return holder.cells[0].source == submitted


def update(lang: str, aid: str, root: Path | None = None) -> tuple[int, int, int]:
    """Bring ``translations/<lang>/<aid>.po`` up to the English of ``lessons/``: a new cell gets an
    empty entry, a changed cell's entry gets the new English with its old translation kept as
    fuzzy (``#| msgid`` holds the English it translated), a removed cell's entry becomes obsolete.
    Returns (added, changed, removed)."""
    import polib

    path = catalogue_path(lang, aid, root)
    po = polib.pofile(str(path)) if path.is_file() else polib.POFile(wrapwidth=0)
    po.metadata.update({"Project-Id-Version": f"seqcourse {aid}", "Language": lang,
                        "MIME-Version": "1.0", "Content-Type": "text/plain; charset=UTF-8",
                        "Content-Transfer-Encoding": "8bit"})
    nb = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
    current = {c.get("id"): c.source for c in _english_cells(nb)}
    entries = {e.msgctxt: e for e in po if not e.obsolete}
    added = changed = 0
    for ctx, english in current.items():
        entry = entries.get(ctx)
        if entry is None:
            po.append(polib.POEntry(msgctxt=ctx, msgid=english, msgstr="", occurrences=[(f"{aid}.ipynb", ctx)]))
            added += 1
        elif entry.msgid != english:
            entry.previous_msgid, entry.msgid = entry.msgid, english
            if entry.msgstr and "fuzzy" not in entry.flags:
                entry.flags.append("fuzzy")
            changed += 1
    removed = _retire_and_save(po, path, entries, current)
    return added, changed, removed


def _retire_and_save(po, path: Path, entries: dict, current) -> int:
    """Mark obsolete the entries (key -> entry) whose key is no longer in ``current``; save the
    catalogue; return how many were retired."""
    retired = [entry for key, entry in entries.items() if key not in current]
    for entry in retired:
        entry.obsolete = True
    path.parent.mkdir(parents=True, exist_ok=True)
    po.wrapwidth = 0
    po.save(str(path))
    return len(retired)


def status(root: Path | None = None) -> list[str]:
    """One line per lesson and language whose translation is not wholly current: what
    ``course check-release`` lists (a stale or missing translation shows the English with a notice;
    it does not fail the release)."""
    from seqcourse_grader.nbg import assignments

    lines = []
    for lang in LANGUAGES:
        for aid in assignments():
            nb = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
            r = translate_notebook(nb, lang, aid, root)
            total = r.translated + len(r.stale) + len(r.missing) + len(r.broken)
            if r.stale or r.missing or r.broken:
                parts = [f"{len(r.stale)} stale ({', '.join(r.stale[:4])}{'...' if len(r.stale) > 4 else ''})"
                         if r.stale else "", f"{len(r.missing)} not translated" if r.missing else "",
                         f"{len(r.broken)} broken: {'; '.join(r.broken[:2])}" if r.broken else ""]
                lines.append(f"translations/{lang}/{aid}.po: {r.translated} of {total} cells current; "
                             + ", ".join(p for p in parts if p))
    return lines


# ------------------------------------------------------------------ the checks' messages
MESSAGES_DIR = REPO_ROOT / "seqcourse" / "locale"   # shipped with the student's package
_MESSAGE_ARGS = {"hint", "what", "exercise", "message"}
_POSITIONAL = {"check_true": 1, "check_bar": 2}   # the message argument given by position


def _constant(node) -> str | None:
    import ast

    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def learner_messages() -> dict[str, str]:
    """English message -> where it comes from: every template the checks translate (``tr`` and
    ``marked`` in ``seqcourse/``) and every plain-string hint or message a lesson's cells pass to
    a check (f-strings are built at run time and stay English)."""
    import ast

    found: dict[str, str] = {}
    for path in sorted((REPO_ROOT / "seqcourse").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("tr", "marked") and node.args:
                text = _constant(node.args[0])
                if text:
                    found.setdefault(text, f"seqcourse/{path.name}")
    from seqcourse_grader.nbg import assignments

    for aid in assignments():
        nb = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
                if not name.startswith("check_"):
                    continue
                values = [k.value for k in node.keywords if k.arg in _MESSAGE_ARGS]
                if name in _POSITIONAL and len(node.args) > _POSITIONAL[name]:
                    values.append(node.args[_POSITIONAL[name]])
                for v in values:
                    text = _constant(v)
                    if text and " " in text:
                        found.setdefault(text, f"{aid}.ipynb:{cell.get('id')}")
    return found


def update_messages(lang: str, root: Path | None = None) -> tuple[int, int]:
    """Bring ``seqcourse/locale/<lang>.po`` up to the messages in use: new ones empty, ones no
    longer used obsolete. Returns (added, removed)."""
    import polib

    path = Path(root or MESSAGES_DIR) / f"{lang}.po"
    po = polib.pofile(str(path), wrapwidth=0) if path.is_file() else polib.POFile(wrapwidth=0)
    po.metadata.update({"Project-Id-Version": "seqcourse checks", "Language": lang, "MIME-Version": "1.0",
                        "Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit"})
    current = learner_messages()
    known = {e.msgid: e for e in po if not e.obsolete}
    added = 0
    for text, where in current.items():
        if text not in known:
            po.append(polib.POEntry(msgid=text, msgstr="", occurrences=[(where, "")]))
            added += 1
    return added, _retire_and_save(po, path, known, current)


def message_status(root: Path | None = None) -> list[str]:
    """One line per language whose checks' messages are not all translated."""
    import polib

    lines = []
    current = learner_messages()
    for lang in LANGUAGES:
        path = Path(root or MESSAGES_DIR) / f"{lang}.po"
        done = {e.msgid for e in polib.pofile(str(path)) if e.msgstr and "fuzzy" not in e.flags} \
            if path.is_file() else set()
        missing = [m for m in current if m not in done]
        if missing:
            lines.append(f"seqcourse/locale/{lang}.po: {len(current) - len(missing)} of {len(current)} "
                         "check messages translated (the rest are shown in English)")
    return lines
