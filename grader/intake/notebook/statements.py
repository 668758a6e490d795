"""A cell's top-level statements, parsed with ``ast`` and sorted into what may be taken and what never runs.

Taken when the files need them:

- ``import`` / ``from ... import`` (a ``*`` import goes into every written file);
- ``class`` and ``def`` definitions (decorators included);
- constants: a name (or a tuple of names) bound to a literal or a simple
  expression without calls, such as ``CONFIG = [64, "M", 128]`` or
  ``ALPHA, BETA = 1.2, 1.1``.

Everything else at the top level never runs: loops (training), calls (plots,
``print``, ``model.fit()``), assignments computed by a call
(``model = ResNet()``), ``if``/``with``/``try`` blocks and the
``if __name__ == "__main__"`` block. Which names a statement uses is read from
the compiler's symbol table (``symtable``), so a function's own parameters and
local variables are not mistaken for notebook globals.
"""

from __future__ import annotations

import ast
import symtable
from dataclasses import dataclass

FUTURE, IMPORT, STAR_IMPORT, DEFINITION, CONSTANT, CODE, QUIET = (
    "future", "import", "star_import", "definition", "constant", "code", "quiet")
TAKEABLE = (IMPORT, STAR_IMPORT, DEFINITION, CONSTANT)


@dataclass(frozen=True)
class Statement:
    notebook: str
    cell: int
    order: int            # position among all statements of the submission's notebooks
    first_line: int       # within the cell, from 1
    last_line: int
    kind: str
    source: str
    binds: frozenset[str]
    uses: frozenset[str]
    reason: str = ""      # for CODE: why it never runs
    meanings: tuple[tuple[str, str], ...] = ()   # for IMPORT: (name, what it names), e.g. ("nn", "torch.nn")

    @property
    def label(self) -> str:
        return shorten(self.source.strip().splitlines()[0] if self.source.strip() else "")

    @property
    def lines(self) -> str:
        return str(self.first_line) if self.first_line == self.last_line else f"{self.first_line}-{self.last_line}"


def shorten(text: str, limit: int = 72) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _has_side_effects(expr: ast.AST) -> bool:
    """Whether evaluating ``expr`` can call something (a lambda's body is not evaluated)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return True
        if isinstance(node, ast.Lambda):
            stack.extend(node.args.defaults + [d for d in node.args.kw_defaults if d is not None])
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def _target_names(target: ast.AST) -> list[str] | None:
    """Names bound by an assignment target made only of names (``a``, ``a, b``, ``[a, *rest]``); else None."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        names: list[str] = []
        for element in target.elts:
            inner = _target_names(element)
            if inner is None:
                return None
            names += inner
        return names
    return None


def _stored_names(node: ast.AST) -> frozenset[str]:
    """Names a statement that never runs would have bound at the top level (for the report's warnings)."""
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
    names: set[str] = set()
    for t in targets:
        names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return frozenset(names)


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def classify(node: ast.stmt) -> tuple[str, frozenset[str], str]:
    """(kind, names bound, why it never runs) for one top-level statement."""
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return FUTURE, frozenset(), ""
    if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
        return STAR_IMPORT, frozenset(), ""
    if isinstance(node, ast.Import):
        return IMPORT, frozenset(a.asname or a.name.split(".")[0] for a in node.names), ""
    if isinstance(node, ast.ImportFrom):
        return IMPORT, frozenset(a.asname or a.name for a in node.names), ""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return DEFINITION, frozenset({node.name}), ""
    if isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
        return QUIET, frozenset(), ""     # magic-line placeholders, docstrings, ``...``
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [_target_names(t) for t in targets]
        if all(n is not None for n in names):
            if not _has_side_effects(node.value):
                return CONSTANT, frozenset(x for n in names for x in n or []), ""
            return CODE, _stored_names(node), "an assignment computed by a call (it would run code) never runs"
        return CODE, _stored_names(node), "an assignment to an attribute or an item never runs"
    if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
        return CODE, _stored_names(node), "a loop at the top level (such as a training loop) never runs"
    if isinstance(node, ast.If) and _is_main_guard(node):
        return CODE, frozenset(), 'the if __name__ == "__main__" block never runs'
    if isinstance(node, ast.Expr) and _has_side_effects(node.value):
        return CODE, frozenset(), "a call at the top level (a plot, a print, a training run) never runs"
    what = {ast.If: "an if block", ast.With: "a with block", ast.AsyncWith: "a with block", ast.Try: "a try block",
            ast.AugAssign: "an in-place update", ast.Expr: "an expression", ast.Delete: "a del statement",
            ast.Raise: "a raise statement", ast.Assert: "an assert statement"}
    name = next((v for k, v in what.items() if isinstance(node, k)), "this statement")
    return CODE, _stored_names(node), f"{name} at the top level never runs"


def import_meanings(node: ast.stmt) -> tuple[tuple[str, str], ...]:
    """What each name an import binds refers to: ``import torch.nn as nn`` and ``from torch import nn`` agree."""
    if isinstance(node, ast.Import):
        return tuple((a.asname, a.name) if a.asname else (a.name.split(".")[0], a.name.split(".")[0])
                     for a in node.names)
    if isinstance(node, ast.ImportFrom):
        base = "." * node.level + (node.module or "")
        return tuple((a.asname or a.name, f"{base}.{a.name}") for a in node.names)
    return ()


def used_names(source: str, node: ast.AST) -> frozenset[str]:
    """Global names a statement refers to: at module level, or from inside its functions and classes."""
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    names: set[str] = set()
    stack = [table]
    while stack:
        t = stack.pop()
        for sym in t.get_symbols():
            if sym.is_referenced() and (t.get_type() == "module" or sym.is_global()):
                names.add(sym.get_name())
        stack.extend(t.get_children())
    return frozenset(names)


def statement_source(source: str, lines: list[str], node: ast.stmt) -> tuple[int, int, str]:
    """(first line, last line, text) of a top-level statement, decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    last = node.end_lineno or node.lineno
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or first != node.lineno:
        return first, last, "\n".join(lines[first - 1:last])
    return first, last, ast.get_source_segment(source, node) or "\n".join(lines[first - 1:last])


def parse_cell(source: str) -> ast.Module:
    """The cell parsed as a module; ``SyntaxError`` (with a line number) when it is not Python."""
    try:
        return ast.parse(source, filename="<cell>")
    except (ValueError, RecursionError, MemoryError) as e:   # NUL bytes, absurd nesting
        raise SyntaxError(str(e) or type(e).__name__) from None


def cell_statements(notebook: str, cell: int, source: str, tree: ast.Module, start: int) -> list[Statement]:
    """The cell's top-level statements, numbered from ``start`` in submission order."""
    lines = source.splitlines()
    out = []
    for i, node in enumerate(tree.body):
        kind, binds, reason = classify(node)
        first, last, text = statement_source(source, lines, node)
        uses = used_names(text, node) - binds if kind in TAKEABLE else frozenset()
        out.append(Statement(notebook, cell, start + i, first, last, kind, text, binds, uses, reason,
                             import_meanings(node) if kind == IMPORT else ()))
    return out
