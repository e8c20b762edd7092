"""The checks' messages in the learner's language.

A student edition made with ``course student-edition OUT --language fa`` holds a ``LANGUAGE`` file
at its root; ``SEQCOURSE_LANGUAGE`` overrides it. The checks (:mod:`seqcourse.checks`) and the
visible tests then say what is wrong in that language: every message template of the checks and
every hint or message a visible test passes as a plain string is looked up, by its English text,
in ``seqcourse/locale/<language>.po`` (read with Babel, already a dependency). A message with no
current translation, or whose translation lost one of the template's ``{fields}``, stays English.
Elsewhere (the full course, grading) the language is English.
"""

from __future__ import annotations

import functools
import os
import string

from seqcourse.paths import PACKAGE_DIR, REPO_ROOT

# The course's translations: code -> the language's own name (English is the source).
LANGUAGES = {"ru": "Русский", "fa": "فارسی", "th": "ไทย"}
LANGUAGE_FILE = REPO_ROOT / "LANGUAGE"
LOCALE_DIR = PACKAGE_DIR / "locale"


def language() -> str:
    chosen = os.environ.get("SEQCOURSE_LANGUAGE", "").strip()
    if not chosen and LANGUAGE_FILE.is_file():
        chosen = LANGUAGE_FILE.read_text(encoding="utf-8").strip()
    return chosen or "en"


def fields(template: str) -> set[str]:
    """The ``{name}`` fields of a message template."""
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError:
        return set()


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """English -> translation, for the current entries of ``locale/<lang>.po`` (none for English,
    a missing file, or an entry marked fuzzy)."""
    path = LOCALE_DIR / f"{lang}.po"
    if lang == "en" or not path.is_file():
        return {}
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        po = read_po(f)
    return {m.id: m.string for m in po if m.id and m.string and not m.fuzzy
            and isinstance(m.id, str) and fields(m.string) == fields(m.id)}


def marked(text: str) -> str:
    """``text`` unchanged: marks a message that is translated later, where it is shown
    (``course translations update`` collects it)."""
    return text


def tr(text: str, **values) -> str:
    """``text`` in the learner's language, with ``values`` filled into its ``{fields}``."""
    translated = catalogue(language()).get(text, text)
    if not values:
        return translated
    try:
        return translated.format(**values)
    except (KeyError, IndexError, ValueError):
        return text.format(**values)
