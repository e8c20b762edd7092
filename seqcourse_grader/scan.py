"""Static scan of student code for tampering, run at grading time.

A runtime guard cannot see everything (a student may patch something no test watches, or patch
the guard). So grading also reads the student's cells with Python's ``ast`` and flags what an
honest answer never needs: assigning to an attribute of an imported module, ``setattr`` or
``delattr`` on one, touching ``builtins``/``__builtins__``/``sys.modules``, or reaching the
guard. A finding does not change the score by itself; it marks the submission "needs review".
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from seqcourse import cells

_ALWAYS_MODULES = {"torch", "np", "numpy", "nn", "F", "math", "builtins", "sys", "seqcourse",
                   "guard", "checks", "os", "random", "matplotlib", "plt"}
# get_ipython: the shell's events and exception handlers are how grading restores a learner's names
# after a graded cell (hidden_tests' isolate) and shows failures; an answer never needs them.
_FORBIDDEN_NAMES = {"__builtins__", "builtins", "ctypes", "gc", "_SNAPSHOT", "get_ipython", "EXERCISES",
                    "seqcourse_hidden"}
_FORBIDDEN_ATTRS = {"modules", "_SNAPSHOT", "settrace", "setprofile", "__code__", "__globals__",
                    "__dict__", "__class__", "f_globals", "f_locals", "__subclasses__", "__closure__",
                    "cell_contents", "__wrapped__", "_BUDGETS", "EXERCISES", "events", "set_custom_exc",
                    "CustomTB", "custom_exceptions"}


@dataclass(frozen=True)
class Finding:
    cell: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.cell}, line {self.line}: {self.what}"


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _flat_targets(targets):
    """Assignment targets with tuples, lists and starred names unpacked."""
    for t in targets:
        if isinstance(t, (ast.Tuple, ast.List)):
            yield from _flat_targets(t.elts)
        elif isinstance(t, ast.Starred):
            yield from _flat_targets([t.value])
        else:
            yield t


def _imported_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def _module_level(tree: ast.AST):
    """Nodes of a module, not descending into function, lambda or class bodies (their names are local)."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _bound_names(tree: ast.AST) -> dict[str, ast.AST]:
    """Names a piece of code binds at module level: assignments, defs, classes, imports, loops."""
    out: dict[str, ast.AST] = {}
    for node in _module_level(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.setdefault(node.name, node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                out.setdefault((a.asname or a.name).split(".")[0], node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.setdefault(node.id, node)
    return out


def _import_targets(tree: ast.AST) -> dict[str, str]:
    """For names bound by module-level imports: the dotted object each one names."""
    out: dict[str, str] = {}
    for node in _module_level(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def scan_source(source: str, cell: str = "cell", modules: set[str] | None = None,
                protected: set[str] | dict[str, str | None] | None = None) -> list[Finding]:
    """Findings in one cell's source.

    ``modules``: names bound to modules by earlier cells. ``protected``: names the notebook's
    locked setup cells define (the test helpers, the budget...), which a student cell must not
    rebind at module level; as a dict, it maps names the setup cells imported to what they
    imported, so importing the same thing again (``import torch``) is not flagged.
    """
    # IPython magics and shell escapes are not Python; blank them so ast can parse the rest.
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as exc:
        return [Finding(cell, exc.lineno or 0, f"does not parse as Python ({exc.msg})")]
    mods = set(_ALWAYS_MODULES) | set(modules or ()) | _imported_names(tree)
    out: list[Finding] = []

    def flag(node, what):
        out.append(Finding(cell, getattr(node, "lineno", 0), what))

    if protected:
        top = ast.Module(body=[n for n in tree.body if not isinstance(
            n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))], type_ignores=[])
        same_import = protected if isinstance(protected, dict) else {}
        targets = _import_targets(top)
        for name, node in _bound_names(top).items():
            if name in protected and not (isinstance(node, (ast.Import, ast.ImportFrom)) and
                                          same_import.get(name) is not None and
                                          targets.get(name) == same_import[name]):
                flag(node, f"rebinds {name}, which the locked setup cell defines")
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in protected:
                flag(node, f"redefines {node.name}, which the locked setup cell defines")

    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for t in _flat_targets(targets):
            # Only the chain written to counts (torch.x, torch.x[...]), not the index expressions:
            # `marks[rows, torch.randint(...)] = 1` writes to marks.
            base = t
            while isinstance(base, ast.Subscript):
                base = base.value
            if isinstance(base, ast.Attribute) and _root_name(base) in mods:
                flag(node, f"assigns to {ast.unparse(base)}, an attribute of a module")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in {"setattr", "delattr"} and node.args:
                flag(node, f"calls {node.func.id}() on {ast.unparse(node.args[0])}")
            if node.func.id in {"exec", "eval", "compile", "__import__", "globals"}:
                flag(node, f"calls {node.func.id}()")
        if isinstance(node, ast.Name) and node.id in _FORBIDDEN_NAMES:
            flag(node, f"uses {node.id}")
        if isinstance(node, ast.Attribute) and node.attr in _FORBIDDEN_ATTRS:
            flag(node, f"uses .{node.attr}")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names]
            grading = ("seqcourse_grader", "seqcourse.hidden_tests", "seqcourse.guard", "seqcourse_hidden", "IPython")
            if (mod or "").startswith(grading) or any(
                    n.startswith((*grading, "builtins", "ctypes", "gc")) for n in names) or (
                    mod == "seqcourse" and {"guard", "hidden_tests"} & set(names)):
                flag(node, f"imports {mod or ', '.join(names)}")
    return sorted(set(out), key=lambda f: (f.cell, f.line, f.what))


def scan_notebook(nb) -> list[Finding]:
    """Scan the cells a student may edit (nbgrader solution cells) of an nbformat notebook."""
    findings: list[Finding] = []
    modules: set[str] = set()
    protected: dict[str, str | None] = {}
    for cell in nb.cells:
        read_only = cells.is_locked(cell) and not cells.is_graded(cell) and not cells.is_answer(cell)
        if cell.cell_type == "code" and read_only:
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            imports = _import_targets(tree)
            for name in _bound_names(tree):
                protected[name] = imports.get(name)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        label = cells.grade_id(cell) or f"cell {i}"
        try:
            modules |= _imported_names(ast.parse(cell.source))
        except SyntaxError:
            pass
        # Student-editable: solution cells and every cell nbgrader neither locks nor grades
        # (including cells the student added, which have no nbgrader metadata at all).
        if not cells.is_locked(cell):
            findings += scan_source(cell.source, label, modules, protected)
    return findings
