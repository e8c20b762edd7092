"""Gates: a call, compiled into a function's code as a constant, that decides whether it may run.

The vault (:mod:`seqcourse_grader.vault`) compiles the reference answers and the hidden tests with a
placeholder call at the start of their functions, then replaces the placeholder constant by a gate
(:func:`with_gate`). A constant of a function's code is reachable only through ``__code__`` (which
the sandbox refuses to notebook code) or ``gc`` (refused too): unlike a global, a default or a
closure's cell, the learner's code cannot swap it for one that always says yes.
"""

from __future__ import annotations

import ast
import sys
import types
import warnings
from collections.abc import Callable

_getframe = sys._getframe
PLACEHOLDER = "\x00seqcourse gate\x00"   # compiled into gated code, then replaced by the gate itself
REFERENCE_FILE = "<reference answer: "    # the file name of a reference's code: "<reference answer: 01-rnn-cell/rnn_cell>"


def is_cell(filename: str) -> bool:
    """A frame of notebook code: IPython names cells ``<ipython-input-...>`` or, in ipykernel,
    ``/tmp/ipykernel_<pid>/<hash>.py``."""
    return filename.startswith("<ipython-input") or "ipykernel_" in filename


def _gate_call() -> ast.Expr:
    return ast.Expr(ast.Call(func=ast.Constant(PLACEHOLDER), args=[], keywords=[]))


def _gate_body(body: list) -> list:
    docstring = body[:1] if body and isinstance(body[0], ast.Expr) and isinstance(
        getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str) else []
    return [*docstring, _gate_call(), *body[len(docstring):]]


class GateEveryFunction(ast.NodeTransformer):
    """Every function, method, nested function and lambda starts with the gate."""

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        node.body = _gate_body(node.body)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self.generic_visit(node)
        gate = ast.Call(func=ast.Constant(PLACEHOLDER), args=[], keywords=[])
        node.body = ast.Subscript(value=ast.Tuple(elts=[gate, node.body], ctx=ast.Load()),
                                  slice=ast.Constant(1), ctx=ast.Load())
        return node


def compile_gated(tree: ast.Module, filename: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # "'str' object is not callable": the placeholder, on purpose
        return compile(ast.fix_missing_locations(tree), filename, "exec")


def with_gate(code: types.CodeType, gate: Callable[[], None]) -> types.CodeType:
    """``code`` (and every code object inside it) with the placeholder constant replaced by ``gate``."""
    consts = tuple(gate if type(c) is str and c == PLACEHOLDER else
                   with_gate(c, gate) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_consts=consts)


def reference_gate(run, label: str, breach: Callable[[str, str], None]) -> Callable[[], None]:
    """A gate that lets a reference run only while the graded cell that installed it (``run``) runs:
    a module-level frame of that cell's code, in its namespace, is on the stack. (IPython runs each
    top-level statement of a cell in a frame of its own; they share the cell's file name.)
    ``run`` None lets it run anywhere (a reference asked for outside a graded cell)."""
    def gate():
        if run is None:
            return
        filename, namespace = run.filename, run.namespace
        f = _getframe(2)                  # whoever called the reference
        while f is not None:
            if f.f_globals is namespace and f.f_code.co_filename == filename and f.f_code.co_name == "<module>":
                if not run.restored:
                    return
                break
            f = f.f_back
        breach("reference answer", f"{label} was called outside the graded cell that installed it")
    return gate


def caller_gate(grader_files: frozenset, breach: Callable[[str, str], None], name: str) -> Callable[[], None]:
    """A gate that lets a hidden test's function run only when called by the grader: below it on
    the stack, the first frame that is grader code or notebook code must be grader code."""
    def gate():
        f = _getframe(2)
        while f is not None:
            filename = f.f_code.co_filename
            if filename in grader_files:
                return
            if is_cell(filename):
                breach("hidden tests", f"notebook code called the hidden tests' {name}")
            f = f.f_back
    return gate


class GateTopFunctions(ast.NodeTransformer):
    """Every module-level function starts with the gate (a hidden-test module)."""

    def visit_Module(self, node):
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                item.body = _gate_body(item.body)
        return node
