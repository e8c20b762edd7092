"""The stored outputs of ``solutions/``: a real run of a lesson, kept so readers see results.

``course run-solution ID [--profile cpu]`` executes a solution notebook in place, as the README's
"to edit a lesson" asks, and then makes its progress bars readable without a live kernel.

A tqdm bar in a notebook is a widget: the output holds only a reference to it, plus a plain-text
copy taken when the bar *started* ("0%"). GitHub, nbviewer and an exported page show that copy,
and a bar with ``leave=False`` is hidden once done even where the widget is restored. So each bar's
output becomes its final text ("dates: 100%|██████████| 1200/1200 [01:51<00:00, ...]"), rebuilt
from the widget state the run saved in the notebook's metadata, and the widget reference goes.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _bar_text(states: dict, model_id: str) -> str | None:
    """The final text of a tqdm bar, from its saved widget state; None if the state is missing."""
    box = states.get(model_id, {}).get("state", {})
    children = [states.get(ref.removeprefix("IPY_MODEL_"), {}).get("state", {}) for ref in box.get("children", [])]
    if len(children) != 3:
        return None
    left, bar, right = children
    if bar.get("max") is None:
        return None
    filled = round(10 * float(bar.get("value") or 0) / max(float(bar["max"]), 1e-12))
    text = f"{left.get('value', '')}|{'█' * filled}{' ' * (10 - filled)}|{right.get('value', '')}"
    return html.unescape(text).replace("\u2007", " ")


def finalize_progress_bars(nb) -> int:
    """Replace each progress-bar widget output by its final text; return how many were replaced."""
    states = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    replaced = 0
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW) if out.get("output_type") == "display_data" else None
            if view is None:
                outputs.append(out)
                continue
            text = _bar_text(states, view.get("model_id", ""))
            if text is not None:
                outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
            replaced += 1     # a widget whose state was not saved shows nothing useful: dropped
        if "outputs" in cell:
            cell.outputs = outputs
    if replaced:
        nb.metadata.pop("widgets", None)   # no output refers to a widget any more
    return replaced


def live_widgets(nb) -> int:
    """How many outputs still show a widget (a stored bar that renders as "0%")."""
    return sum(WIDGET_VIEW in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


def run_solution(path: Path, profile: str, timeout: int = 3600) -> int:
    """Execute a solution notebook in place under ``profile``; finalize its bars. Returns the number
    of progress bars finalized."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    # one thread unless told otherwise: on a shared machine torch's threads spin against each other
    threads = {k: os.environ.get(k, "1") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    client.execute(env={**os.environ, **threads, "SEQCOURSE_PROFILE": profile})
    bars = finalize_progress_bars(nb)
    nbformat.write(nb, path)
    return bars
