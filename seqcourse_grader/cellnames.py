"""Which names a notebook cell reads from the cells before it, and which it binds: the data flow
the mistakes runner follows a mistake along (:mod:`seqcourse_grader.mistakes`)."""

from __future__ import annotations

import ast

from seqcourse.env import SHRUNK_SUFFIXES

EVERYTHING = "*"   # a cell that calls globals() may read any name


def reads_shrunk_budget(source: str) -> bool:
    """Does the cell read a count of epochs, steps or repeats from ``budget``?"""
    try:
        tree = ast.parse("\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return True
    shrunk_attr = any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "budget"
                      and n.attr.endswith(SHRUNK_SUFFIXES) for n in ast.walk(tree))
    attribute_bases = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    passed_whole = any(isinstance(n, ast.Name) and n.id == "budget" and id(n) not in attribute_bases
                       for n in ast.walk(tree))    # e.g. train(model, budget)
    return shrunk_attr or passed_whole


def cell_names(cell) -> tuple[set[str], set[str]]:
    """:func:`source_names` of a cell; a graded cell whose hidden test reads the notebook's namespace
    lists the names it reads in its metadata (``seqcourse.reads``), which then stand for
    ``globals()``."""
    reads, writes = source_names(cell.source)
    declared = cell.metadata.get("seqcourse", {}).get("reads")
    if declared is not None:
        reads = (reads - {EVERYTHING}) | set(declared)
    return reads, writes


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _module_level_loads(tree: ast.Module):
    """(statement index, name) of each name load executed at the cell's top level (not inside
    functions, classes or comprehensions, except the parts Python evaluates there: decorators,
    defaults, bases, the first iterable of a comprehension)."""
    for index, statement in enumerate(tree.body):
        for node in _top_level_nodes(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                yield index, node.id


def _top_level_nodes(statement: ast.AST):
    stack = [statement]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack += node.decorator_list + node.args.defaults + [d for d in node.args.kw_defaults if d]
        elif isinstance(node, ast.Lambda):
            stack += node.args.defaults + [d for d in node.args.kw_defaults if d]
        elif isinstance(node, ast.ClassDef):
            stack += node.decorator_list + node.bases + [k.value for k in node.keywords]
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            stack.append(node.generators[0].iter)
        else:
            stack += list(ast.iter_child_nodes(node))


def _nested_global_reads(table) -> set[str]:
    """Module-level names read inside the cell's functions, classes and comprehensions."""
    reads = set()
    for child in table.get_children():
        reads |= {sym.get_name() for sym in child.get_symbols() if sym.is_referenced() and sym.is_global()}
        reads |= _nested_global_reads(child)
    return reads


def source_names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell reads from before it, names it binds at top level). IPython magics and the
    hidden ``EXERCISES.isolate(..., globals())`` line (it only swaps answers in) are skipped."""
    import symtable

    code = "\n".join(ln for ln in source.splitlines()
                     if not ln.lstrip().startswith(("%", "!")) and "EXERCISES.isolate(" not in ln)
    try:
        tree, table = ast.parse(code), symtable.symtable(code, "<cell>", "exec")
    except SyntaxError:
        return {EVERYTHING}, set()
    writes: set[str] = set()
    first_store: dict[str, int] = {}
    for index, node in enumerate(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = {node.name}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound = {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            bound = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                     and not any(isinstance(p, _SCOPES) for p in _parents(node, n))}
        for name in bound:
            first_store.setdefault(name, index)
        writes |= bound
    # A top-level read counts unless an earlier statement of the cell bound the name; a read inside
    # a function or comprehension counts unless the cell binds the name at all.
    loop_bound = {index: {n.id for node in ast.walk(statement) if isinstance(node, (ast.For, ast.With, ast.comprehension))
                          for target in ([node.target] if not isinstance(node, ast.With) else
                                         [i.optional_vars for i in node.items if i.optional_vars])
                          for n in ast.walk(target) if isinstance(n, ast.Name)}
                  for index, statement in enumerate(tree.body)}
    reads = {name for index, name in _module_level_loads(tree)
             if index <= first_store.get(name, index) and name not in loop_bound[index]}
    reads |= _nested_global_reads(table) - writes
    if reads & {"globals", "vars", "eval", "exec"}:
        reads.add(EVERYTHING)
    return reads, writes


def _parents(root: ast.AST, target: ast.AST) -> list[ast.AST]:
    """The nodes between ``root`` and ``target`` (exclusive), outermost first."""
    for child in ast.iter_child_nodes(root):
        if child is target:
            return []
        path = _parents(child, target)
        if path is not None:
            return [child, *path]
    return None
