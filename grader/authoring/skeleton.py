"""Student skeletons generated from the reference solution.

The reference marks the code students write with comment lines::

    def forward(self, x: Tensor) -> Tensor:
        \"\"\"What the method does, shapes in and out: kept in the skeleton.\"\"\"
        # BEGIN SOLUTION
        # TODO: the hint that becomes the error message (optional line)
        ...solution code...
        # END SOLUTION

``make_stub`` replaces every marked region with
``raise NotImplementedError("TODO: ...")`` at the markers' indentation and
keeps everything else: imports, constants, class statements, signatures,
docstrings and unmarked code. A ``super().__init__(...)`` call inside a region
is kept before the ``raise``, so a stubbed ``nn.Module`` constructor still
initialises the module. Regions must cover whole statements of one block inside
a function body; anything else is a ``SkeletonError`` naming the line.

``generate`` writes the skeleton folder from the reference folder and ``check``
lists how a committed skeleton differs from what ``generate`` would write.
"""

from __future__ import annotations

import ast
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"

_BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\s*$")
_END_RE = re.compile(r"^(?P<indent>[ \t]*)#\s*END SOLUTION\s*$")
_ANY_MARKER_RE = re.compile(r"^[ \t]*#.*\b(BEGIN|END)[ _-]*SOLUTION", re.IGNORECASE)
_TODO_RE = re.compile(r"^[ \t]*#\s*TODO\b:?\s*(?P<hint>.*?)\s*$")


class SkeletonError(ValueError):
    """The reference cannot be turned into a skeleton; the message names the file and line."""


@dataclass(frozen=True)
class _Region:
    begin: int  # 1-based line of the BEGIN marker
    end: int  # 1-based line of the END marker
    indent: str
    hint: str | None


def _find_regions(lines: list[str], filename: str) -> list[_Region]:
    regions: list[_Region] = []
    open_at: int | None = None
    open_indent = ""
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        begin, end = _BEGIN_RE.match(line), _END_RE.match(line)
        if begin:
            if open_at is not None:
                raise SkeletonError(
                    f"{filename}:{number}: BEGIN SOLUTION inside the region opened at line {open_at}; "
                    "close it with END SOLUTION first"
                )
            open_at, open_indent = number, begin.group("indent")
        elif end:
            if open_at is None:
                raise SkeletonError(f"{filename}:{number}: END SOLUTION without a BEGIN SOLUTION before it")
            if end.group("indent") != open_indent:
                raise SkeletonError(
                    f"{filename}:{number}: END SOLUTION is indented differently from its BEGIN SOLUTION "
                    f"at line {open_at}"
                )
            hint = None
            if open_at + 1 < number:
                todo = _TODO_RE.match(lines[open_at].rstrip("\r\n"))
                if todo:
                    hint = todo.group("hint")
            regions.append(_Region(open_at, number, open_indent, hint))
            open_at = None
        elif _ANY_MARKER_RE.match(line):
            raise SkeletonError(
                f"{filename}:{number}: malformed solution marker {line.strip()!r}; "
                f"write exactly {BEGIN!r} or {END!r} on a line of its own"
            )
    if open_at is not None:
        raise SkeletonError(f"{filename}:{open_at}: BEGIN SOLUTION has no matching END SOLUTION")
    return regions


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _is_compound(stmt: ast.stmt) -> bool:
    """A statement with blocks of its own (def, class, if, for, while, with, try, match)."""
    return isinstance(getattr(stmt, "body", None), list) or isinstance(getattr(stmt, "cases", None), list)


def _qualname(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    names = []
    while node in parents:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        node = parents[node]
    return ".".join(reversed(names))


def _is_super_init(stmt: ast.stmt) -> bool:
    """``super().__init__(...)`` or ``super(Cls, self).__init__(...)`` as a statement."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    func = stmt.value.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "__init__"
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "super"
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_stub(source: str, filename: str = "<reference>") -> str:
    """The student version of one reference module.

    Every ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` region becomes one line
    ``raise NotImplementedError("TODO: <hint>")`` indented like the markers; the
    hint is the text of a ``# TODO:`` comment right after ``# BEGIN SOLUTION``,
    else ``implement <qualified name of the enclosing function>``. Statements
    ``super().__init__(...)`` inside a region are kept before the ``raise``.
    A source without markers comes back unchanged.

    Raises:
        SkeletonError: unbalanced, nested or misspelled markers, a region outside
            a function body, a region that splits a statement or holds no code,
            or a result that is not valid Python.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise SkeletonError(f"{filename}:{e.lineno}: the reference is not valid Python: {e.msg}") from None
    lines = source.splitlines(keepends=True)
    regions = _find_regions(lines, filename)
    if not regions:
        return source
    parents = _parents(tree)
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)]

    replacements: list[tuple[_Region, list[str]]] = []
    for region in regions:
        inside = [s for s in statements if region.begin < s.lineno < region.end]
        split = [s for s in inside if (s.end_lineno or s.lineno) > region.end] + [
            s
            for s in statements
            if not _is_compound(s)
            and any(s.lineno < marker <= (s.end_lineno or s.lineno) for marker in (region.begin, region.end))
        ]
        if split:
            raise SkeletonError(
                f"{filename}:{region.begin}: the solution region (lines {region.begin}-{region.end}) "
                f"splits the statement at line {split[0].lineno}; markers must enclose whole statements"
            )
        if not inside:
            raise SkeletonError(f"{filename}:{region.begin}: the solution region holds no code")
        inside_ids = {id(s) for s in inside}
        top = [s for s in inside if id(parents.get(s)) not in inside_ids]
        owners = {id(parents[s]) for s in top}
        if len(owners) != 1:
            raise SkeletonError(
                f"{filename}:{region.begin}: the solution region spans more than one block; "
                "put BEGIN and END SOLUTION at the same level inside one function"
            )
        for s in top:
            if s.col_offset != len(region.indent.expandtabs()):
                raise SkeletonError(
                    f"{filename}:{s.lineno}: the statement is indented differently from the markers "
                    f"at line {region.begin}"
                )
        scope = parents[top[0]]
        while scope in parents and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope = parents[scope]
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            raise SkeletonError(
                f"{filename}:{region.begin}: the solution region is not inside a function body; "
                "students can only be asked to fill in function and method bodies"
            )
        hint = region.hint or f"implement {_qualname(scope, parents)}"
        newline = "\r\n" if lines[region.begin - 1].endswith("\r\n") else "\n"
        kept = []
        for s in top:
            if _is_super_init(s):
                kept.extend(
                    region.indent + line.lstrip(" \t") if n == s.lineno else line
                    for n, line in enumerate(lines[s.lineno - 1 : s.end_lineno], start=s.lineno)
                )
        message = hint if hint.startswith("TODO") else f"TODO: {hint}"
        replacements.append((region, kept + [f"{region.indent}raise NotImplementedError({_quote(message)}){newline}"]))

    out: list[str] = []
    position = 0  # 0-based index of the next source line to copy
    for region, new_lines in replacements:
        out.extend(lines[position : region.begin - 1])
        out.extend(new_lines)
        position = region.end
    out.extend(lines[position:])
    result = "".join(out)
    try:
        ast.parse(result, filename=filename)
    except SyntaxError as e:
        raise SkeletonError(f"{filename}:{e.lineno}: the generated stub is not valid Python: {e.msg}") from None
    return result


def _reference_files(reference_dir: Path) -> list[Path]:
    files = sorted(p for p in Path(reference_dir).glob("*.py") if p.is_file())
    if not files:
        raise SkeletonError(f"{reference_dir}: no .py files to generate a skeleton from")
    return files


def _stubs(reference_dir: Path) -> dict[str, str]:
    return {p.name: make_stub(p.read_text(encoding="utf-8"), filename=str(p)) for p in _reference_files(reference_dir)}


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def generate(reference_dir: str | Path, skeleton_dir: str | Path) -> list[Path]:
    """Write the skeleton of every ``*.py`` in ``reference_dir`` into ``skeleton_dir``.

    All stubs are made before anything is written, so a marker error leaves the
    skeleton untouched. Files whose content is already right are not rewritten;
    ``*.py`` files in ``skeleton_dir`` without a reference counterpart are
    removed (the folder belongs to the generator).

    Returns:
        The skeleton files, sorted by name.
    """
    stubs = _stubs(Path(reference_dir))
    out = Path(skeleton_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.py"):
        if stale.name not in stubs:
            stale.unlink()
    written = []
    for name, text in stubs.items():
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            _write_atomic(path, text)
        written.append(path)
    return written


def check(reference_dir: str | Path, skeleton_dir: str | Path) -> list[str]:
    """How ``skeleton_dir`` differs from what ``generate`` would write; empty when up to date.

    Each entry is one line: a missing file, a file that is out of date (with the
    first differing line), or a ``*.py`` file that has no reference counterpart.
    """
    stubs = _stubs(Path(reference_dir))
    out = Path(skeleton_dir)
    problems = []
    for name, text in stubs.items():
        path = out / name
        if not path.is_file():
            problems.append(f"{name}: missing from {out}")
            continue
        current = path.read_text(encoding="utf-8")
        if current != text:
            problems.append(f"{name}: out of date ({_first_difference(current, text)})")
    if out.is_dir():
        for extra in sorted(out.glob("*.py")):
            if extra.name not in stubs:
                problems.append(f"{extra.name}: in {out} but not generated from the reference")
    return problems


def _first_difference(current: str, expected: str) -> str:
    have, want = current.splitlines(keepends=True), expected.splitlines(keepends=True)
    for number, (a, b) in enumerate(zip(have, want), start=1):
        if a != b:
            column = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            start = max(0, column - 20)
            return f"line {number}: has {a[start:start + 50]!r}, expected {b[start:start + 50]!r}"
    return f"{len(have)} lines, expected {len(want)}"
