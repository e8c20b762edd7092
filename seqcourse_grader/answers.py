"""Finding reference answers in material that leaves the course: the wheel, the student edition,
the course site.

An answer is any function or class in a solution cell whose body the student's stub does not also
hold (a class's given ``__init__`` is no answer; its ``forward``, written between the solution
markers, is). Bodies are compared as ASTs: names, docstrings, comments and layout do not count, so
a renamed or reformatted copy is still found. Text that is not Python (a web page, a notebook, a
search index) is searched for its code blocks first (:func:`code_blocks`).
"""

from __future__ import annotations

import ast
import functools
import html
import json
import re
from pathlib import Path

import nbformat

from seqcourse.paths import REPO_ROOT
from seqcourse_grader.reuse import without_markers


def _body_key(node) -> str:
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return ast.dump(ast.Module(body=body, type_ignores=[]), include_attributes=False)


def definitions(source: str) -> dict[str, str]:
    """Body key -> name, for every def and class (nested ones too) with a real body; {} for text
    that does not parse as Python."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # one-statement bodies such as `pass` or `return x` say nothing about an answer
            if sum(1 for _ in ast.walk(ast.Module(body=node.body, type_ignores=[]))) >= 8:
                out[_body_key(node)] = node.name
    return out


def solution_cells(edition: str, root: Path | None = None) -> list[str]:
    root = Path(root or REPO_ROOT)
    return [c.source for path in sorted((root / edition).glob("*/*.ipynb"))
            for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]


@functools.cache
def solution_answers(root: Path | None = None) -> dict[str, str]:
    """Body key -> the answer's name, for every answer of every lesson."""
    given = {key for src in solution_cells("lessons", root) for key in definitions(src)}
    answers = {}
    for src in solution_cells("solutions", root):
        for key, name in definitions(without_markers(src)).items():
            if key not in given:
                answers[key] = name
    return answers


_PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S)
_TAG = re.compile(r"<[^>]+>")


def code_blocks(name: str, text: str) -> list[str]:
    """The Python a file could show: a module whole, a notebook's code cells, a web page's
    ``<pre>`` blocks (tags removed, entities decoded), and any of those inside JSON strings."""
    if name.endswith(".py"):
        return [text]
    blocks = [html.unescape(_TAG.sub("", m)) for m in _PRE.findall(text)]
    if name.endswith(".ipynb"):
        try:
            nb = nbformat.reads(text, as_version=4)
            blocks += [c.source for c in nb.cells if c.cell_type == "code"]
        except Exception:   # noqa: BLE001 - not a notebook after all: search it as text
            blocks.append(text)
    elif name.endswith((".json", ".js")):
        blocks += [s for s in re.findall(r'"((?:[^"\\]|\\.)*)"', text) if "def " in s or "class " in s]
        blocks = [json.loads(f'"{b}"') if "\\n" in b else b for b in blocks]
    elif not blocks:
        blocks.append(text)
    return blocks


def answers_in(files: dict[str, str], answers: dict[str, str] | None = None) -> list[str]:
    """``file: name is the answer X`` for every reference answer found in ``files`` (name -> text)."""
    answers = solution_answers() if answers is None else answers
    found = []
    for name, text in files.items():
        for block in code_blocks(name, text):
            for key, what in definitions(block).items():
                if key in answers:
                    found.append(f"{name}: {what} is the answer {answers[key]}")
    return found
