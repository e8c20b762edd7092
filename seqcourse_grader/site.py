"""``course site OUT``: the course as a website, built with Sphinx and myst-nb from the one source.

Each lesson page is the student edition's notebook (``lessons/``) with the outputs of the stored
``cpu`` run (``solutions/``) on every cell that is neither an exercise nor a test, so a reader sees
the maths, figures and tables of a real run and the exercises as a student gets them. The site is
public, so it holds no answer of any lesson: a given cell that shows an earlier lesson's answer
(``seqcourse_grader.reuse``) shows, in its place, a stub that names the exercise and asks for the
learner's own answer; no notebook on the site carries nbgrader's metadata; and the built folder
is searched for solution markers and reference answers (:mod:`seqcourse_grader.answers`) before
it is reported done. MathJax comes from the built folder, so the site works with no network.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from seqcourse import cells
from seqcourse.paths import lesson_notebook
from seqcourse_grader.reuse import Reuse, top_level_definitions
from seqcourse_grader.translations import LANGUAGES, translate_notebook, wrap_for_language

NOTEBOOKS = "notebooks"   # the downloadable student notebooks, in the site's source and output
CONF = '''\
# Written by seqcourse_grader/site.py for one build; not a file to edit.
project = "seqcourse"
author = "the seqcourse authors"
copyright = "the seqcourse authors, MIT licence"
language = {language!r}
extensions = ["myst_nb"]
nb_execution_mode = "off"            # the outputs are the stored cpu run's
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
html_theme = "sphinx_book_theme"
html_title = "seqcourse"
html_static_path = ["_static"]
html_copy_source = False             # the pages are the sources a reader needs
html_show_sourcelink = False
html_last_updated_fmt = None
mathjax_path = "mathjax/tex-chtml.js"   # in _static: no CDN
html_theme_options = {{
    "use_download_button": False, "use_fullscreen_button": False, "use_repository_button": False,
    "show_toc_level": 2, "navigation_with_keys": False,
}}
html_context = {{"default_mode": "light"}}   # the theme's script logs an error without one
exclude_patterns = ["_build", "{notebooks}"]
suppress_warnings = ["mystnb.unknown_mime_type"]
html_css_files = ["seqcourse.css"]
{search}
'''
CSS = """\
/* Persian pages: prose right to left; maths, code and outputs left to right inside it */
div[dir="rtl"] { text-align: right; }
div[dir="rtl"] .math, div[dir="rtl"] mjx-container, div[dir="rtl"] code, div[dir="rtl"] pre,
div[dir="rtl"] .highlight, div[dir="rtl"] table { direction: ltr; unicode-bidi: isolate; }
div[dir="rtl"] div.math, div[dir="rtl"] mjx-container[display="true"] { text-align: center; }
div[dir="rtl"] ul, div[dir="rtl"] ol { padding-right: 2em; padding-left: 0; }
.seqcourse-languages { font-size: 0.95em; }
"""


@dataclass
class SiteReport:
    out: Path
    lessons: list[str]
    placeholders: dict[str, list[str]]   # lesson -> the earlier answers its given code no longer shows
    seconds: float


@functools.cache
def _reuses() -> tuple[Reuse, ...]:
    from seqcourse_grader.reuse import sync_given

    return tuple(sync_given()[0])


def _revealing(aid: str) -> dict[str, list[Reuse]]:
    """Given cell grade id -> what it copies from earlier lessons' solutions."""
    out: dict[str, list[Reuse]] = {}
    for r in _reuses():
        if r.lesson == aid:
            out.setdefault(r.grade_id, []).append(r)
    return out


def _stub(name: str, is_class: bool, where: str) -> str:
    message = f"{where}: {name} is your own answer; paste it here"
    if is_class:
        return (f"class {name}:   # your answer to {where} goes here\n"
                f"    def __init__(self, *args, **kwargs):\n"
                f"        raise NotImplementedError({message!r})\n")
    return (f"def {name}(*args, **kwargs):   # your answer to {where} goes here\n"
            f"    raise NotImplementedError({message!r})\n")


def placeholder(source: str, reuses: list[Reuse]) -> tuple[str, list[str]]:
    """The given cell with every definition copied from an earlier lesson's answer replaced by a
    stub that names that exercise; and the names replaced."""
    import ast

    where = {}
    for r in reuses:
        lesson, grade_id = r.source.split("/", 1)
        title = cells.exercise_titles(nbformat.read(lesson_notebook(lesson, "solutions"), as_version=4))
        for name in r.names:
            where[name] = f"lesson {lesson}, {title.get(grade_id, grade_id)}"
    classes = {n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    lines = source.splitlines()
    spans = sorted(((a, b, n) for n, (a, b) in top_level_definitions(source).items() if n in where), reverse=True)
    for a, b, name in spans:
        lines[a:b + 1] = _stub(name, name in classes, where[name]).rstrip("\n").splitlines()
    lessons = sorted({r.source.split("/", 1)[0] for r in reuses})
    head = (f"# The course gives this cell the answers of {', '.join(lessons)}. This public copy does not show\n"
            "# them: paste your own answers to those exercises in place of the stubs below.\n")
    return head + "\n".join(lines) + "\n", sorted(n for *_, n in spans)


def _public_outputs(outputs: list) -> list:
    """A stored run's outputs a reader should see: no progress bars or warnings (stderr)."""
    return [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            and o.get("output_type") != "error"]


def site_notebook(aid: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """The lesson as the public site shows it, and the earlier answers replaced by stubs."""
    student = nbformat.read(lesson_notebook(aid, "lessons"), as_version=4)
    solution = nbformat.read(lesson_notebook(aid, "solutions"), as_version=4)
    if [c.cell_type for c in student.cells] != [c.cell_type for c in solution.cells]:
        raise RuntimeError(f"lessons/{aid} does not match solutions/{aid} cell for cell: run `course release` first")
    revealing, replaced = _revealing(aid), []
    for cell, ref in zip(student.cells, solution.cells, strict=True):
        gid = cells.grade_id(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if gid in revealing:
                cell.source, names = placeholder(cell.source, revealing[gid])
                replaced += names
            elif not cells.is_graded(cell) and not cells.is_answer(cell) \
                    and cell.source == ref.source:
                cell.outputs = _public_outputs(ref.outputs)
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags" and v}
    student.metadata = {k: v for k, v in student.metadata.items() if k in ("kernelspec", "language_info")}
    nbformat.validator.normalize(student)
    return student, replaced


def _lessons_table(lessons: list[str], titles: dict[str, str], words: dict[str, str]) -> str:
    """The lessons table with links to the site's pages and notebooks: each lesson's title as its
    page shows it, and in English the README's "you build and check" column too."""
    from seqcourse_grader.edition import readme_lessons_table

    blurbs = readme_lessons_table()[1]
    columns = ["#", words["lesson"]] + ([words["you build"]] if "you build" in words else []) + [words["notebook"]]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for aid in lessons:
        cells_ = [aid[:2], f"[{titles[aid]}](lessons/{aid}.ipynb)"]
        if "you build" in words:
            cells_.append(blurbs[aid].strip().strip("|").split("|")[2].strip() if aid in blurbs else "")
        cells_.append(f"{{download}}`{aid}.ipynb <{NOTEBOOKS}/{aid}.ipynb>`")
        rows.append("| " + " | ".join(cells_) + " |")
    return "\n".join(rows)


WORDS = {
    "en": dict(title="seqcourse: from the RNN cell to Seq2Seq with attention", lesson="lesson",
               notebook="notebook", **{"you build": "you build and check"},
               intro="An autograded PyTorch course. It takes you from a single recurrent cell, through "
                     "backpropagation through time and LSTM gates, to a Seq2Seq translator with attention. "
                     "Each lesson is a notebook with prose, maths, plots and graded exercises; every figure "
                     "and number on these pages comes from a real run of the course (its `cpu` profile).",
               work="To work through a lesson, download its notebook (or get the student edition from your "
                    "instructor, which also has the `seqcourse` library the notebooks import) and run it in "
                    "JupyterLab. Where a lesson builds on an earlier lesson's answers, these pages and the "
                    "notebooks show a stub in their place: paste your own answers there.",
               languages="Languages", lessons="Lessons"),
    "ru": dict(title="seqcourse: от ячейки RNN к Seq2Seq с вниманием", lesson="урок", notebook="блокнот",
               intro="Курс по PyTorch с автоматической проверкой. Он ведёт от одной рекуррентной ячейки через "
                     "обратное распространение ошибки во времени и вентили LSTM к переводчику Seq2Seq с "
                     "вниманием. Каждый урок — блокнот с текстом, формулами, графиками и оцениваемыми "
                     "упражнениями; все графики и числа на этих страницах получены настоящим запуском курса "
                     "(профиль `cpu`).",
               work="Чтобы пройти урок, скачайте его блокнот (или получите студенческую редакцию курса у "
                    "преподавателя: в ней есть и библиотека `seqcourse`, которую импортируют блокноты) и "
                    "запустите его в JupyterLab. Где урок опирается на ответы предыдущего урока, здесь и в "
                    "блокнотах вместо них заглушка: вставьте туда свои ответы.",
               languages="Языки", lessons="Уроки"),
    "fa": dict(title="seqcourse: از سلول RNN تا Seq2Seq با توجه", lesson="درس", notebook="نوت‌بوک",
               intro="یک دورهٔ PyTorch با تصحیح خودکار. این دوره شما را از یک سلول بازگشتی، از راه پس‌انتشار "
                     "در طول زمان و دروازه‌های LSTM، به یک مترجم Seq2Seq با توجه می‌رساند. هر درس یک نوت‌بوک "
                     "با متن، فرمول، نمودار و تمرین‌های نمره‌دار است؛ همهٔ نمودارها و عددهای این صفحه‌ها از "
                     "اجرای واقعی دوره (پروفایل `cpu`) آمده‌اند.",
               work="برای کار روی یک درس، نوت‌بوک آن را بارگیری کنید (یا نسخهٔ دانشجویی را از مدرس خود بگیرید که "
                    "کتابخانهٔ `seqcourse` را هم دارد) و آن را در JupyterLab اجرا کنید. جایی که درسی بر "
                    "پاسخ‌های درس قبلی بنا شده است، این صفحه‌ها و نوت‌بوک‌ها به جای آن‌ها جای‌نگهداری نشان "
                    "می‌دهند: پاسخ‌های خودتان را آنجا بگذارید.",
               languages="زبان‌ها", lessons="درس‌ها"),
    "th": dict(title="seqcourse: จากเซลล์ RNN สู่ Seq2Seq พร้อมกลไกความสนใจ", lesson="บทเรียน",
               notebook="โน้ตบุ๊ก",
               intro="หลักสูตร PyTorch ที่ตรวจงานอัตโนมัติ พาคุณจากเซลล์วนซ้ำเซลล์เดียว ผ่านการแพร่กระจาย"
                     "ย้อนกลับผ่านเวลาและเกตของ LSTM ไปจนถึงตัวแปลภาษา Seq2Seq พร้อมกลไกความสนใจ "
                     "แต่ละบทเรียนเป็นโน้ตบุ๊กที่มีคำอธิบาย สมการ กราฟ และแบบฝึกหัดที่ให้คะแนน "
                     "กราฟและตัวเลขทุกตัวในหน้าเหล่านี้มาจากการรันหลักสูตรจริง (โปรไฟล์ `cpu`)",
               work="หากต้องการทำบทเรียน ให้ดาวน์โหลดโน้ตบุ๊กของบทเรียนนั้น (หรือขอฉบับสำหรับผู้เรียนจากผู้สอน "
                    "ซึ่งมีไลบรารี `seqcourse` ที่โน้ตบุ๊กใช้ด้วย) แล้วรันใน JupyterLab "
                    "ในบทเรียนที่ใช้คำตอบของบทเรียนก่อนหน้า หน้าเหล่านี้และโน้ตบุ๊กจะแสดงโค้ดว่างไว้แทน "
                    "ให้วางคำตอบของคุณเองลงไปแทน",
               languages="ภาษา", lessons="บทเรียน"),
}
LANGUAGE_NAMES = {"en": "English", **LANGUAGES}


def _home(lessons: list[str], titles: dict[str, str], language: str, languages: list[str]) -> str:
    w = WORDS[language]
    here = "" if language == "en" else "../"
    # raw HTML: MyST would take a relative link for a cross-reference inside this one build
    links = " · ".join(f"<b>{LANGUAGE_NAMES[lang]}</b>" if lang == language else
                       f'<a href="{here}{"" if lang == "en" else lang + "/"}index.html" hreflang="{lang}">'
                       f"{LANGUAGE_NAMES[lang]}</a>" for lang in languages)
    body = (f"# {w['title']}\n\n<p class=\"seqcourse-languages\">{w['languages']}: {links}</p>\n\n"
            f"{w['intro']}\n\n{_lessons_table(lessons, titles, w)}\n\n{w['work']}\n")
    body = wrap_for_language(language, body)
    toc = "\n".join(f"lessons/{aid}" for aid in lessons)
    return body + f"\n\n```{{toctree}}\n:maxdepth: 1\n:caption: {w['lessons']}\n:hidden:\n\n{toc}\n```\n"


def _mathjax(static: Path) -> None:
    """MathJax 3's CommonHTML build and its fonts, from the django-static-mathjax wheel."""
    try:
        import mathjax
    except ImportError:
        raise RuntimeError("MathJax's files are missing: install the site's packages "
                           "(.venv/bin/pip install -e '.[site]')") from None
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    target = static / "mathjax"
    target.mkdir(parents=True)
    shutil.copy2(es5 / "tex-chtml.js", target / "tex-chtml.js")
    for sub in ("output/chtml/fonts/woff-v2", "input/tex/extensions"):
        shutil.copytree(es5 / sub, target / sub)


def _title(nb, aid: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return aid


def write_sources(src: Path, pages: dict[str, nbformat.NotebookNode], language: str = "en",
                  languages: list[str] | None = None) -> None:
    """The Sphinx project of the site in one language in ``src``, from the lessons' pages as
    :func:`site_notebook` makes them (left unchanged here)."""
    src.mkdir(parents=True)
    search = "extensions.append('seqcourse_grader.thai_search')" if language == "th" else ""
    (src / "conf.py").write_text(CONF.format(language=language, notebooks=NOTEBOOKS, search=search), encoding="utf-8")
    _mathjax(src / "_static")
    (src / "_static" / "seqcourse.css").write_text(CSS, encoding="utf-8")
    (src / NOTEBOOKS).mkdir()
    (src / "lessons").mkdir()
    titles = {}
    for aid, english in pages.items():
        page = copy.deepcopy(english)
        if language != "en":
            translate_notebook(page, language, aid)
            page.metadata.pop("seqcourse", None)   # the site's copies carry no grading metadata at all
        titles[aid] = _title(page, aid)
        nbformat.write(page, src / "lessons" / f"{aid}.ipynb")
        for cell in page.cells:   # the download: the same notebook, to be run by the learner
            if cell.cell_type == "code":
                cell.outputs = []
        nbformat.write(page, src / NOTEBOOKS / f"{aid}.ipynb")
    (src / "index.md").write_text(_home(list(pages), titles, language, languages or [language]), encoding="utf-8")


def build_site(out: Path | str, lessons: list[str] | None = None, languages: list[str] | None = None) -> SiteReport:
    """Build the site into ``out`` (new or empty) with warnings as errors, English at its root and
    each translation in ``out/<language>/``; check it; report."""
    import time

    from seqcourse_grader.nbg import assignments

    started = time.perf_counter()
    known = assignments()
    lessons = known if lessons is None else lessons
    unknown = sorted(set(lessons) - set(known))
    if unknown:
        raise ValueError(f"no lessons {unknown}; the lessons: {', '.join(known)}")
    languages = list(languages or LANGUAGE_NAMES)
    if set(languages) - set(LANGUAGE_NAMES) or "en" not in languages:
        raise ValueError(f"languages {languages}: English and any of {', '.join(LANGUAGE_NAMES)}")
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: give a new or empty folder")
    made = {aid: site_notebook(aid) for aid in lessons}
    pages = {aid: page for aid, (page, _) in made.items()}
    placeholders = {aid: replaced for aid, (_, replaced) in made.items()}
    with tempfile.TemporaryDirectory(prefix="seqcourse-site-") as tmp:
        builds = []
        for language in languages:
            src = Path(tmp) / language
            write_sources(src, pages, language, languages)
            dest = out if language == "en" else out / language
            builds.append((language, subprocess.Popen(
                [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                 "-d", str(Path(tmp) / f"doctrees-{language}"), str(src), str(dest)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        failed = []
        for language, proc in builds:
            _, err = proc.communicate()
            if proc.returncode:
                failed.append(f"[{language}]\n{err[-3000:]}")
        if failed:
            raise RuntimeError("Sphinx could not build the site:\n" + "\n".join(failed))
    problems = check_site(out)
    if problems:
        shutil.rmtree(out)
        raise RuntimeError("the site was not kept:\n" + "\n".join(problems[:40]))
    return SiteReport(out, lessons, placeholders, time.perf_counter() - started)


# ------------------------------------------------------------------------------ checking a built site
_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)""")


def check_site(root: Path) -> list[str]:
    """What is wrong with a built site: a file holding a solution or hidden-test marker or a
    reference answer; an internal link or anchor that leads nowhere; a page, script or style that
    loads anything from the network."""
    from seqcourse_grader.answers import answers_in
    from seqcourse_grader.edition import FORBIDDEN

    problems, texts = [], {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            texts[path] = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    for path, text in texts.items():
        rel = path.relative_to(root).as_posix()
        problems += [f"{rel}: holds {m!r}" for m in FORBIDDEN if m in text]
        if '"nbgrader"' in text or "nbgrader_" in text and rel.endswith(".ipynb"):
            problems.append(f"{rel}: holds nbgrader's metadata")
    problems += answers_in({p.relative_to(root).as_posix(): t for p, t in texts.items()
                            if p.suffix in (".html", ".ipynb", ".js", ".txt", ".json")
                            and "_static/mathjax" not in p.as_posix()})
    anchors = {p: set(re.findall(r'\bid="([^"]+)"', t)) for p, t in texts.items() if p.suffix == ".html"}
    for path, text in texts.items():
        # the theme's Jinja macros sit in _static as .html files; they are no pages
        if path.suffix not in (".html", ".css") or path.suffix == ".html" and "{{" in text and "_static" in path.parts:
            continue
        rel = path.relative_to(root).as_posix()
        links = _LINK.findall(text) if path.suffix == ".html" else _CSS_URL.findall(text)
        for link in links:
            if link.startswith(("http://", "https://", "//")):
                if path.suffix == ".css" or re.search(r"<(script|link|img|iframe)[^>]+" + re.escape(link), text):
                    problems.append(f"{rel}: loads {link} from the network")
                continue
            if link.startswith(("mailto:", "data:", "javascript:")) or link == "#":
                continue
            target, _, anchor = link.partition("#")
            target = target.split("?", 1)[0]
            dest = (path.parent / target).resolve() if target else path
            if dest.is_dir():
                dest = dest / "index.html"
            if not dest.exists():
                problems.append(f"{rel}: links to {link}, which is not in the site")
            elif anchor and dest.suffix == ".html" and anchor not in anchors.get(dest, set()):
                problems.append(f"{rel}: links to {link}, whose anchor is not on that page")
    return problems
