"""The course site (`course site OUT`): every lesson, no answer anywhere, nothing from the network.

The site is built once for the module (Sphinx with warnings as errors; the builder itself refuses a
site whose check fails). The tests read the built files, show that the check catches what it is
for (an answer pasted into a page, a dead link, a CDN script), and open the home page and a lesson
in Chromium: no broken image, maths rendered by the site's own MathJax, no console error.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading

import nbformat
import pytest

from seqcourse.paths import REPO_ROOT
from seqcourse_grader.answers import answers_in
from seqcourse_grader.nbg import assignments
from seqcourse_grader.reuse import without_markers
from seqcourse_grader.site import build_site, check_site

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "html"
    report = build_site(out)
    print(f"\nsite: {len(report.lessons)} lessons in {report.seconds:.1f} s")
    return report


def test_every_lesson_has_a_page_a_notebook_and_a_row(site):
    home = (site.out / "index.html").read_text(encoding="utf-8")
    for aid in assignments():
        page = site.out / "lessons" / f"{aid}.html"
        assert page.is_file(), f"no page for {aid}"
        assert f'href="lessons/{aid}.html"' in home, f"the home page does not link {aid}"
        downloads = list((site.out / "_downloads").glob(f"*/{aid}.ipynb"))
        assert len(downloads) == 1, f"{aid}: downloadable notebooks {downloads}"
        nb = nbformat.read(downloads[0], as_version=4)
        assert all("nbgrader" not in c.metadata for c in nb.cells), f"{aid}: the download carries nbgrader's metadata"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert not (site.out / "_sources").exists() or not any((site.out / "_sources").iterdir())
    assert check_site(site.out) == []


def test_figures_and_maths_of_the_stored_run_are_on_the_pages(site):
    page = (site.out / "lessons" / "03-lstm.html").read_text(encoding="utf-8")
    assert page.count("<img") >= 3 and 'class="math' in page
    assert "_static/mathjax/tex-chtml.js" in page and "cdn" not in page.lower()


def test_earlier_answers_are_stubs_that_name_their_exercise(site):
    assert site.placeholders["02-bptt"] == ["rnn_cell", "rnn_forward"]
    assert site.placeholders["01-rnn-cell"] == []
    text = (site.out / "lessons" / "02-bptt.html").read_text(encoding="utf-8")
    assert "lesson 01-rnn-cell, exercise 2: rnn_cell is your own answer" in text.replace("&#39;", "'")


def _copy(site, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(site.out, copy)
    return copy


def test_the_check_finds_an_answer_a_dead_link_and_a_cdn(site, tmp_path):
    copy = _copy(site, tmp_path)
    cell = next(c for c in nbformat.read(REPO_ROOT / "solutions/01-rnn-cell/01-rnn-cell.ipynb", as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "rnn_cell")
    answer = without_markers(cell.source).replace("def rnn_cell(", "def my_cell(")
    page = copy / "lessons" / "04-deep-rnn.html"
    page.write_text(page.read_text(encoding="utf-8").replace(
        "</body>", "<pre>" + answer.replace("<", "&lt;") + "</pre>"
        '<a href="lessons/nowhere.html">x</a><script src="https://cdn.example.org/x.js"></script></body>'),
        encoding="utf-8")
    problems = "\n".join(check_site(copy))
    assert "my_cell is the answer rnn_cell" in problems, problems
    assert "nowhere.html, which is not in the site" in problems, problems
    assert "loads https://cdn.example.org/x.js from the network" in problems, problems
    index = copy / "searchindex.js"
    index.write_text(index.read_text(encoding="utf-8") + json.dumps({"x": answer}), encoding="utf-8")
    assert any("searchindex.js" in p for p in check_site(copy))


def test_pages_render_in_a_browser_in_every_language(site):
    """Home page and lesson 03 in each language: images load, every formula is rendered by the
    site's own MathJax, no code shown on the page is a reference answer, no console error, no
    request outside the site; Persian prose runs right to
    left with its maths left to right; Thai lines break inside their box and Thai search finds a Thai
    word inside a run of text."""
    from test_browser import BENIGN_CONSOLE, CHROMIUM, CHROMIUM_ARGS, _playwright_or_skip

    sync_playwright = _playwright_or_skip()
    handler = functools.partial(_Quiet, directory=str(site.out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors, outside = [], []
            # the browser's own favicon request is no page's resource; every resource a page asks
            # for that fails is caught by its response below
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not any(
                b.search(m.text) for b in BENIGN_CONSOLE) else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:")) else None)
            for lang in ("en", "ru", "fa", "th"):
                prefix = "" if lang == "en" else f"{lang}/"
                for path in (f"{prefix}index.html", f"{prefix}lessons/03-lstm.html"):
                    page.goto(f"{base}/{path}", wait_until="networkidle")
                    broken = page.eval_on_selector_all(
                        "img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
                    assert broken == [], f"{path}: broken images {broken}"
                    shown = page.eval_on_selector_all("pre", "els => els.map(e => e.innerText)")
                    found = answers_in({f"{path}#{i}.py": text for i, text in enumerate(shown)})
                    assert found == [], f"{path} shows reference answers: {found}"
                    if "lessons/" not in path:
                        continue
                    page.wait_for_selector("mjx-container", timeout=30_000)
                    raw = page.eval_on_selector_all(
                        "div.math, span.math", "els => els.filter(e => !e.querySelector('mjx-container')).length")
                    assert raw == 0, f"{path}: {raw} formulas were not rendered by MathJax"
                    if lang == "fa":
                        directions = page.evaluate("""() => {
                            const box = document.querySelector('div[dir="rtl"] p');
                            const math = document.querySelector('div[dir="rtl"] mjx-container');
                            return [box && getComputedStyle(box).direction,
                                    math && getComputedStyle(math).direction];
                        }""")
                        assert directions == ["rtl", "ltr"], f"{path}: prose and maths run {directions}"
            # Thai has no spaces: the browser must still break its lines (at word boundaries it finds
            # itself), so no paragraph runs out of its box and long ones wrap
            page.goto(f"{base}/th/lessons/03-lstm.html", wait_until="networkidle")
            lines = page.evaluate("""() => [...document.querySelectorAll('article p')]
                .filter(p => /[\u0e00-\u0e7f]{40,}/.test(p.innerText))
                .map(p => [p.scrollWidth <= p.clientWidth + 1,
                           Math.round(p.getBoundingClientRect().height / parseFloat(getComputedStyle(p).lineHeight))])""")
            assert lines and all(fits for fits, _ in lines), f"Thai paragraphs overflow their box: {lines}"
            assert max(n for _, n in lines) >= 2, f"no Thai paragraph wraps onto a second line: {lines}"
            word = _a_thai_word(site)
            page.goto(f"{base}/th/search.html?q={word}", wait_until="networkidle")
            page.wait_for_function("document.querySelectorAll('#search-results li').length > 0", timeout=30_000)
            browser.close()
    finally:
        server.shutdown()
    assert errors == [], f"console errors: {errors}"
    assert outside == [], f"requests outside the site: {outside}"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _a_thai_word(site) -> str:
    """Four Thai letters from the middle of a run of lesson 03's Thai prose (no spaces around it)."""
    import re

    text = (site.out / "th" / "lessons" / "03-lstm.html").read_text(encoding="utf-8")
    runs = [r for r in re.findall(r"[\u0e00-\u0e7f]{12,}", text)]
    assert runs, "lesson 03 has no Thai prose"
    return runs[len(runs) // 2][4:8]
