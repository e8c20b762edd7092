"""A real browser uses the course in JupyterLab, as a student and an instructor would.

Chromium, driven by Playwright, opens lesson 01's student notebook in JupyterLab, runs the setup cell
and a visible test (first on the stub, where it must show the NotImplementedError, then after typing
an answer into the answer cell, where it must pass), presses nbgrader's Validate button and reads the
dialog, opens the formgrader's "Manage Assignments" page, and opens the Persian edition's lesson 01
(its prose must run right to left and its maths left to right). Any HTTP response >= 500, uncaught
page error or console error (but for a short list of benign ones) on the way fails the test.
Screenshots of each step are saved under the test's tmp_path; when it fails they are copied to a
/tmp/seqcourse-browser-test-* folder (pytest rotates its tmp folders) and their paths printed.

The formgrader reads nbgrader_config.py from the server's working directory, and the course root it
names must lie inside the server's root_dir, hence the scratch course below rather than a copy of
the lesson alone.

Nothing tracked is touched: the server's root (and working directory, where nbgrader reads
nbgrader_config.py) is a scratch course under tmp_path holding copies of the repo's two config files,
solutions/ and lessons/, so the browser edits and saves a copy; HOME, the Jupyter runtime folder and
the gradebook (SEQCOURSE_GRADEBOOK) are temporary too.

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python; without one of them the test
is skipped and says how to install it. Playwright's own browser download is not used.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from seqcourse.paths import REPO_ROOT

pytestmark = pytest.mark.pipeline

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own requests fail on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LESSON = "01-rnn-cell"
NOTEBOOK = f"lessons/{LESSON}/{LESSON}.ipynb"  # relative to the server's root
PERSIAN = f"fa/{LESSON}.ipynb"  # the Persian edition's notebook, written by _scratch_course
EXERCISE = "bag_of_embeddings"  # the answer cell typed in; its visible test follows it
# Console errors fail the test too, except these, which are not failures of the course's pages.
BENIGN_CONSOLE = [
    re.compile(r"Failed to load resource: the server responded with a status of 404"),  # favicons
]
TIMEOUT_MS = 90_000  # the longest single wait (kernel start, validation) on a loaded 2-core machine

# JupyterLab settings for the temporary HOME: every cell stays in the page (no windowing), and no
# news or update checks (they would reach for the network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def _playwright_or_skip():
    """sync_playwright, or a skip that says which part is missing and how to install it."""
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing; install Debian's chromium with "
                    "`apt-get install chromium` (.ci/run does so when run as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not importable; install it with `pip install playwright` "
                    "(it is in the dev extra); its browser download is not needed")
    return sync_playwright


def _scratch_course(root: Path) -> None:
    """Copies of what JupyterLab and nbgrader read: the config files, solutions/ and lessons/.

    The copied configs find the course root from their own location, so it is the scratch course.
    """
    root.mkdir()
    (root / "autograder").mkdir()
    configs = [REPO_ROOT / "nbgrader_config.py", *sorted((REPO_ROOT / "autograder").glob("*.py"))]
    for config in configs:
        shutil.copy2(config, root / config.relative_to(REPO_ROOT))
    for edition in ("solutions", "lessons"):
        shutil.copytree(REPO_ROOT / edition, root / edition,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    import nbformat

    from seqcourse_grader.translations import translate_notebook

    persian = nbformat.read(REPO_ROOT / NOTEBOOK, as_version=4)
    translate_notebook(persian, "fa", LESSON)
    (root / PERSIAN).parent.mkdir()
    nbformat.write(persian, root / PERSIAN)


def _cells(root: Path) -> dict:
    """Positions (in the student notebook) of the setup cell, the exercise and its visible test."""
    cells = json.loads((root / NOTEBOOK).read_text(encoding="utf-8"))["cells"]
    ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells]
    answer = ids.index(EXERCISE)
    assert ids[answer + 1] == f"test_{EXERCISE}", "the exercise's visible test must follow it"
    setup = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    return {"setup": setup, "answer": answer, "test": answer + 1,
            "test_source": "".join(cells[answer + 1]["source"])}


def _solution(root: Path) -> str:
    """The instructor's answer for the exercise, without nbgrader's solution markers."""
    cells = json.loads((root / f"solutions/{LESSON}/{LESSON}.ipynb").read_text(encoding="utf-8"))["cells"]
    cell = next(c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == EXERCISE)
    lines = "".join(cell["source"]).splitlines()
    return "\n".join(line for line in lines if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Lab:
    """A JupyterLab server on loopback, rooted at a scratch course; always stopped on exit."""

    def __init__(self, root: Path, scratch: Path):
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch / "jupyterlab.log"
        home = scratch / "home"
        for name, settings in LAB_SETTINGS.items():
            path = home / ".jupyter" / "lab" / "user-settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings), encoding="utf-8")
        self.env = dict(
            os.environ, HOME=str(home), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
            JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
            JUPYTERLAB_SETTINGS_DIR=str(home / ".jupyter" / "lab" / "user-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(home / ".jupyter" / "lab" / "workspaces"),
            SEQCOURSE_PROFILE="ci", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
            SEQCOURSE_GRADEBOOK=f"sqlite:///{scratch / 'gradebook.db'}",
            # matplotlib would otherwise rebuild its font cache in the empty HOME on every run
            MPLCONFIGDIR=os.environ.get("MPLCONFIGDIR") or str(Path.home() / ".config" / "matplotlib"),
        )
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> _Lab:
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
               "--ip=127.0.0.1", f"--port={self.port}", f"--ServerApp.token={self.token}",
               f"--ServerApp.root_dir={self.root}", "--ServerApp.open_browser=False",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in __exit__)
        # Its own session, so that its kernels can be stopped with it if it will not stop alone.
        self.process = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_until_up()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_until_up(self, timeout: float = 90) -> None:
        request = urllib.request.Request(f"{self.url}/api/status",
                                         headers={"Authorization": f"token {self.token}"})
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer /api/status in {timeout} s:\n{self.log()}")
            time.sleep(0.3)

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # the server shuts its kernels down on SIGTERM
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)  # its session: server and kernels
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        self._log.close()


class _Recorder:
    """What went wrong in the browser: HTTP >= 500, page errors, console errors; and screenshots."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir()
        self.server_errors: list[str] = []
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.ignored_console: list[str] = []
        self.shots: list[Path] = []

    def attach(self, context, page) -> None:
        context.on("response", self._on_response)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", self._on_console)

    def _on_response(self, response) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.request.method} {response.url}")

    def _on_console(self, message) -> None:
        if message.type == "error":
            benign = any(p.search(message.text) for p in BENIGN_CONSOLE)
            (self.ignored_console if benign else self.console_errors).append(message.text)

    @property
    def failed(self) -> bool:
        return bool(self.server_errors or self.page_errors or self.console_errors)

    def shot(self, page, name: str) -> None:
        path = self.folder / f"{len(self.shots) + 1:02d}-{name}.png"
        try:
            page.screenshot(path=str(path))
            self.shots.append(path)
        except Exception as error:  # a screenshot must not hide the real failure
            print(f"screenshot {name} failed: {error}")

    def report(self) -> str:
        parts = [f"HTTP responses >= 500: {self.server_errors or 'none'}",
                 f"page errors: {self.page_errors or 'none'}",
                 f"console errors: {self.console_errors or 'none'}",
                 f"console errors ignored as benign: {self.ignored_console or 'none'}",
                 "screenshots:"] + [f"  {p}" for p in self.shots]
        return "\n".join(parts)


def _run_cell(page, cell, count: int) -> None:
    """Run one cell from its editor with Shift+Enter; wait until its prompt shows [count].

    The key is pressed only once the cell's editor has the focus, and pressed again if the prompt
    did not change (to [*] or a number) within a few seconds: on a loaded machine JupyterLab can take
    the focus back while it finishes opening the notebook, and the key press is then lost.
    """
    from playwright.sync_api import expect

    prompt = cell.locator(".jp-InputPrompt")
    before = prompt.inner_text().strip()
    for attempt in range(3):
        cell.locator(".cm-content").click()
        expect(cell.locator(".cm-editor")).to_have_class(re.compile(r"\bcm-focused\b"))
        page.keyboard.press("Shift+Enter")
        try:
            expect(prompt).not_to_have_text(before, timeout=10_000)
            break
        except AssertionError:
            print(f"Shift+Enter did not start the cell (try {attempt + 1}); pressing it again")
    expect(prompt).to_have_text(re.compile(rf"\[{count}\]"), timeout=TIMEOUT_MS)


def _stderr(cell):
    """A cell's error outputs (tracebacks and stderr share this renderer)."""
    return cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')


def _drive(page, lab: _Lab, rec: _Recorder, cells: dict, answer: str) -> None:
    from playwright.sync_api import expect

    # 1. Open the student notebook and wait for its kernel.
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}", wait_until="domcontentloaded")
    panel = page.locator(".jp-NotebookPanel").filter(has=page.locator(".jp-Notebook"))
    expect(panel).to_have_count(1, timeout=TIMEOUT_MS)
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=TIMEOUT_MS)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=TIMEOUT_MS)
    all_cells = panel.locator(".jp-Notebook .jp-Cell")
    rec.shot(page, "notebook-open")

    # 2. The setup cell runs cleanly under the ci profile.
    setup = all_cells.nth(cells["setup"])
    _run_cell(page, setup, 1)
    expect(setup.locator(".jp-OutputArea-output")).to_contain_text("profile: ci")
    # (a warning on stderr is not an error; a traceback or an error message is)
    errors = [t for t in _stderr(setup).all_inner_texts() if re.search(r"Traceback|Error\b", t)]
    assert not errors, f"the setup cell shows an error: {errors}"
    rec.shot(page, "setup-ran")

    #    The untouched stub, then its visible test: the test shows the stub's NotImplementedError.
    answer_cell, test = all_cells.nth(cells["answer"]), all_cells.nth(cells["test"])
    expect(test.locator(".cm-content")).to_contain_text(cells["test_source"].splitlines()[0])
    _run_cell(page, answer_cell, 2)
    _run_cell(page, test, 3)
    expect(_stderr(test)).to_contain_text("NotImplementedError")
    rec.shot(page, "stub-test-fails")

    #    Type the answer into the answer cell (insert_text: no auto-indent or auto-closed brackets).
    answer_cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(answer)
    typed = answer_cell.locator(".cm-content").inner_text()
    assert [x.rstrip() for x in typed.splitlines()] == [x.rstrip() for x in answer.splitlines()], typed
    _run_cell(page, answer_cell, 4)
    _run_cell(page, test, 5)
    expect(test.locator(".jp-OutputArea-output")).to_contain_text("visible tests passed")
    assert _stderr(test).count() == 0, f"the test still fails: {_stderr(test).all_inner_texts()}"
    rec.shot(page, "answer-passes")

    # 3. nbgrader's Validate button saves the notebook and validates it on the server.
    panel.locator(".validate-button").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("Validation Results",
                                                                 timeout=TIMEOUT_MS)
    body = dialog.locator(".jp-Dialog-body")
    expect(body).not_to_be_empty()
    rec.shot(page, "validation-dialog")
    text = body.inner_text()
    assert "There was an error running the validate command" not in text, text
    # The other exercises are still stubs: their tests fail; the one answered passes.
    expect(body).to_have_class(re.compile(r"\bvalidation-failed\b"))
    assert "The following cell failed" in text, text
    assert cells["test_source"].splitlines()[0] not in text, (
        "the answered exercise's test is reported failing:\n" + text)
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect(dialog).to_have_count(0)

    # 4. The formgrader finds the course (read from the scratch course's nbgrader_config.py).
    page.goto(f"{lab.url}/formgrader?token={lab.token}", wait_until="domcontentloaded")
    expect(page.locator("body")).to_contain_text("Manage Assignments", timeout=TIMEOUT_MS)
    rows = page.locator("#main-table tr")
    expect(rows.filter(has=page.get_by_role("link", name=LESSON, exact=True))).to_have_count(
        1, timeout=TIMEOUT_MS)
    expect(page.locator("#main-table")).not_to_contain_text("Loading, please wait")
    assert "nbgrader will not work correctly" not in page.locator("body").inner_text()
    rec.shot(page, "formgrader")

    # 5. The Persian edition's notebook: its prose runs right to left, its maths left to right.
    page.goto(f"{lab.url}/lab/tree/{PERSIAN}?token={lab.token}", wait_until="domcontentloaded")
    rtl = page.locator(".jp-RenderedMarkdown div[dir='rtl']").first
    expect(rtl).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_selector(".jp-RenderedMarkdown div[dir='rtl'] mjx-container", timeout=TIMEOUT_MS)
    directions = page.evaluate("""() => {
        const box = document.querySelector(".jp-RenderedMarkdown div[dir='rtl'] p");
        const math = document.querySelector(".jp-RenderedMarkdown div[dir='rtl'] mjx-container");
        return [getComputedStyle(box).direction, getComputedStyle(math).direction];
    }""")
    assert directions == ["rtl", "ltr"], f"Persian prose and maths run {directions}"
    rec.shot(page, "persian-notebook")


def test_student_and_instructor_paths_in_a_real_browser(tmp_path):
    sync_playwright = _playwright_or_skip()
    root = tmp_path / "course"
    _scratch_course(root)
    cells, answer = _cells(root), _solution(root)
    rec = _Recorder(tmp_path / "screenshots")
    failure: BaseException | None = None
    with _Lab(root, tmp_path) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(30_000)
            page = context.new_page()
            rec.attach(context, page)
            try:
                _drive(page, lab, rec, cells, answer)
            except Exception as error:
                rec.shot(page, "failure")
                failure = error
        finally:
            browser.close()
    if failure is None and not rec.failed:
        print(rec.report())
        return
    # pytest's tmp_path folders are rotated by later runs (anyone's): keep the evidence elsewhere.
    kept = Path(tempfile.mkdtemp(prefix="seqcourse-browser-test-"))
    for path in rec.shots + [lab.log_path]:
        shutil.copy2(path, kept / path.name)
    rec.shots = [kept / p.name for p in rec.shots]
    what = (f"{type(failure).__name__}: {failure}" if failure is not None
            else "the browser saw server, page or console errors")
    pytest.fail(f"{what}\n{rec.report()}\nkept in {kept} (with jupyterlab.log); "
                f"JupyterLab log (tail):\n{lab.log()}", pytrace=False)
