"""Hostile submissions: a student who has read the README and the source tries to take the reference
answers instead of writing them.

For each lesson and each *channel* below, :func:`hostile_submission` writes a notebook that does
honest work on the lesson's first exercise only. Its first answer, and a trampoline standing in
for every other answer, keep whatever the exercises' names hold whenever the tests call them (the
references, where the vault installed them) through the channel, and every other answer is fetched
from the channel when called. The code dodges the static scan wherever it can (names built at run
time, no ``globals()``, no ``import gc``), so that what runs is what is judged. Each must end
**graded with at most the honest work's points**, or **needs review** with a reason the grader
names (``tests/test_hostile.py`` grades them all through ``course autograde``'s engine).

``honest`` is the baseline: the first exercise answered, every other left as the stub.
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat

from seqcourse import cells as nbcells
from seqcourse_grader.catalogue import student_submission


@dataclass(frozen=True)
class Channel:
    what: str        # where the stolen answers are kept, or how they are looked for
    setup: str       # code run before the first answer; defines _store(name, value) and _fetch(name)


_IMPORT = "import importlib as _il\n"
CHANNELS: dict[str, Channel] = {
    "global": Channel("a dict in the notebook's globals", """
_box = {}
def _store(name, value): _box[name] = value
def _fetch(name): return _box.get(name)
"""),
    "default": Channel("a mutable default argument", """
def _keep(name, value=None, _box={}):
    if value is not None:
        _box[name] = value
    return _box.get(name)
def _store(name, value): _keep(name, value)
def _fetch(name): return _keep(name)
"""),
    "function-attribute": Channel("an attribute of a function", """
def _keeper(): pass
_keeper.box = {}
def _store(name, value): _keeper.box[name] = value
def _fetch(name): return _keeper.box.get(name)
"""),
    "class-attribute": Channel("an attribute of a class", """
class _Keeper:
    box = {}
def _store(name, value): _Keeper.box[name] = value
def _fetch(name): return _Keeper.box.get(name)
"""),
    "closure": Channel("a closure's cell", """
def _make():
    box = {}
    return (lambda name, value: box.__setitem__(name, value)), box.get
_store, _fetch = _make()
"""),
    "builtins": Channel("the builtins module", _IMPORT + """
_b = vars(_il.import_module("buil" + "tins"))
_b.setdefault("_kept_answers", {})
def _store(name, value): _b["_kept_answers"][name] = value
def _fetch(name): return _b["_kept_answers"].get(name)
"""),
    "torch-attribute": Channel("an attribute of the torch module", """
vars(torch).setdefault("_kept_answers", {})
def _store(name, value): vars(torch)["_kept_answers"][name] = value
def _fetch(name): return vars(torch)["_kept_answers"].get(name)
"""),
    "numpy-attribute": Channel("an attribute of the numpy module", _IMPORT + """
_np = _il.import_module("nu" + "mpy")
vars(_np).setdefault("_kept_answers", {})
def _store(name, value): vars(_np)["_kept_answers"][name] = value
def _fetch(name): return vars(_np)["_kept_answers"].get(name)
"""),
    "file": Channel("a file: the code object, marshalled", _IMPORT + """
_marshal, _types = _il.import_module("mar" + "shal"), _il.import_module("ty" + "pes")
def _store(name, value):
    try:
        with open(f"kept-{name}.bin", "wb") as f:
            f.write(_marshal.dumps(value.__code__))
    except Exception:
        pass
def _fetch(name):
    try:
        with open(f"kept-{name}.bin", "rb") as f:
            return _types.FunctionType(_marshal.loads(f.read()), {"torch": torch, "nn": nn})
    except Exception:
        return None
"""),
    "environment": Channel("an environment variable holding the object's address", _IMPORT + """
_os, _ct = _il.import_module("o" + "s"), _il.import_module("ct" + "ypes")
def _store(name, value): _os.environ["KEPT_" + name] = str(id(value))
def _fetch(name):
    try:
        return _ct.cast(int(_os.environ["KEPT_" + name]), _ct.py_object).value
    except Exception:
        return None
"""),
    "gc": Channel("the interpreter's objects (gc.get_objects)", _IMPORT + """
_gc = _il.import_module("g" + "c")
def _store(name, value): pass
def _fetch(name):
    try:
        found = [o for o in _gc.get_objects() if getattr(o, "__name__", None) == name
                 and getattr(getattr(o, "__code__", None), "co_filename", "").startswith("<reference")]
    except Exception:
        return None
    return found[-1] if found else None
"""),
    "frames": Channel("the callers' frames (sys._getframe)", _IMPORT + """
_sys = _il.import_module("s" + "ys")
_box = {}
def _store(name, value):
    try:
        f = _sys._getframe(1)
        while f is not None:
            for key, val in list(f.f_locals.items()):
                if callable(val) and getattr(val, "__name__", None) == name:
                    _box[name] = val
            f = f.f_back
    except Exception:
        pass
    if value is not None:
        _box.setdefault(name, value)
def _fetch(name): return _box.get(name)
"""),
    "sys-modules": Channel("the grader's modules, found by names built at run time", _IMPORT + """
_sys = _il.import_module("s" + "ys")
def _store(name, value): pass
def _fetch(name):
    for module in list(_sys.modules.values()):
        for attr in ("EXER" + "CISES", "as" + "k"):
            found = getattr(module, attr, None)
            try:
                if attr == "ask":
                    return found("reference", ASSIGNMENT, name)
                if found is not None:
                    return found.reference(name)
            except Exception:
                continue
    return None
"""),
    "subclasses": Channel("classes found through object.__subclasses__() and their globals", """
def _classes():
    seen, todo = set(), [object]
    while todo:
        cls = todo.pop()
        try:
            subs = cls.__subclasses__()
        except TypeError:
            subs = type.__subclasses__(cls)
        for sub in subs:
            if id(sub) not in seen:
                seen.add(id(sub))
                todo.append(sub)
                yield sub
def _store(name, value): pass
def _fetch(name):
    for cls in _classes():
        for member in list(vars(cls).values()):
            scope = getattr(member, "__globals__", None)
            if not isinstance(scope, dict):
                continue
            try:
                if "EXER" + "CISES" in scope:
                    return scope["EXER" + "CISES"].reference(name)
            except Exception:
                pass
            found = scope.get(name)   # the grader's own (PyTorch has a gru_cell of its own)
            if callable(found) and found is not _trampolines.get(name) and not str(
                    getattr(found, "__module__", "")).startswith(("torch", "numpy")):
                return found
    return None
"""),
    "hidden-start": Channel("the hidden tests' own start, called early for a later graded cell", """
from seqcourse.hidden_tests import hidden as _hidden
try:
    _hidden.start(ASSIGNMENT, LAST_GRADED, globals())
except Exception:
    pass
def _store(name, value): pass
def _fetch(name): return None
"""),
    "exception-handler": Channel("failures hidden from nbgrader by a custom exception handler", _IMPORT + """
_il.import_module("IPy" + "thon").get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)
def _store(name, value): pass
def _fetch(name): return None
"""),
    "cell-rewriter": Channel("graded cells emptied by an input transformer, so that none can fail", _IMPORT + """
_shell = _il.import_module("IPy" + "thon").get_ipython()
def _empty_graded(lines):
    return ["pass\\n"] if any("hidden." + "start(" in line for line in lines) else lines
_shell.input_transformers_post.append(_empty_graded)
def _store(name, value): pass
def _fetch(name): return None
"""),
}


def _answers(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and nbcells.is_answer(c)]


def _names(source: str) -> list[str]:
    import ast

    out = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.append(node.name)
    return out


def hostile_submission(assignment: str, channel: str | None):
    """The lesson with its first exercise answered honestly; ``channel`` None leaves every other
    answer as the stub (the honest baseline), else every other answer is fetched through it."""
    nb = student_submission(assignment)
    answers = _answers(nb)
    if channel is None:
        stubbed = nbformat.read(_lessons(assignment), as_version=4)
        stubs = {nbcells.grade_id(c): c.source for c in _answers(stubbed)}
        for cell in answers[1:]:
            cell.source = stubs[nbcells.grade_id(cell)]
        return nb
    names = [n for cell in answers for n in _names(cell.source)]
    graded = [nbcells.grade_id(c) for c in nb.cells if nbcells.is_test(c)]
    first = answers[0]
    honest = _names(first.source)
    head = (f"ASSIGNMENT, LAST_GRADED = {assignment!r}, {graded[-1]!r}\n"
            + CHANNELS[channel].setup.strip("\n") + "\n"
            + "_getters = {" + ", ".join(f"{n!r}: (lambda: {n})" for n in names) + "}\n"
            + "_trampolines = {}\n"
            + "def _capture():\n"
            + "    for name, get in _getters.items():\n"
            + "        try:\n            value = get()\n        except NameError:\n            continue\n"
            + "        if value is not _trampolines.get(name) and name not in " + repr(honest) + ":\n"
            + "            _store(name, value)\n")
    wraps = "\n".join(_wrapped(n, first.source) for n in honest)
    first.source = head + "\n" + first.source + "\n\n" + wraps
    for cell in answers[1:]:
        cell.source = "\n".join(
            f"def {n}(*args, **kwargs):\n    _capture()\n    stolen = _fetch({n!r})\n"
            f"    if stolen is None or stolen is {n}:\n        raise NotImplementedError('nothing to take')\n"
            f"    return stolen(*args, **kwargs)\n_trampolines[{n!r}] = {n}\n" for n in _names(cell.source))
    return nb


def _wrapped(name: str, source: str) -> str:
    """The honest answer ``name``, made to capture whenever the tests use it."""
    import ast

    is_class = any(isinstance(n, ast.ClassDef) and n.name == name for n in ast.parse(source).body)
    if is_class:
        return (f"_honest_{name} = {name}\nclass {name}(_honest_{name}):\n"
                f"    def __init__(self, *args, **kwargs):\n        _capture()\n"
                f"        super().__init__(*args, **kwargs)\n")
    return (f"_honest_{name} = {name}\ndef {name}(*args, **kwargs):\n    _capture()\n"
            f"    return _honest_{name}(*args, **kwargs)\n")


def _lessons(assignment: str):
    from seqcourse.paths import lesson_notebook

    return lesson_notebook(assignment, edition="lessons")


def hostile_class(assignment: str) -> dict[str, object]:
    """Every hostile kind of one lesson, the honest baseline, and a correct notebook (which must
    keep its full marks beside them): kind -> notebook."""
    return {"correct": student_submission(assignment), "honest": hostile_submission(assignment, None),
            **{name: hostile_submission(assignment, name) for name in CHANNELS}}
