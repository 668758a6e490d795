"""A submission's notebooks -> the assignment's files they supply, and the report of what was taken.

Rules of the submission folder:

- a ``.py`` file the folder holds counts; the notebook supplies only the
  assignment's files the folder lacks (per file, never mixed within one file),
  or holds exactly as the skeleton handed them out;
- several notebooks are read in name order as one long notebook, so a name
  defined in two keeps the definition read last;
- a notebook that cannot be read is one problem naming it; the others are
  still read. Size limits are the intake's: a notebook over them never
  reaches this step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grader.intake.notebook.cells import NotebookUnreadable, code_cells
from grader.intake.notebook.magics import strip_magics
from grader.intake.notebook.model import CellReport, LeftOut, NotebookReport, TakenName
from grader.intake.notebook.placement import Placement, place_statements
from grader.intake.notebook.statements import (CODE, FUTURE, IMPORT, QUIET, STAR_IMPORT, Statement, cell_statements,
                                        parse_cell, shorten)
from grader.results import Problem

if TYPE_CHECKING:
    from grader.spec import AssignmentSpec

NOTEBOOK_SUFFIX = ".ipynb"
MAGIC_REASON = "a shell command or IPython magic never runs"
MAX_ENTRIES_PER_CELL = 40


@dataclass(frozen=True)
class NotebookRules:
    """What the spec says about notebooks: whether they are accepted, and where each name goes."""

    accept: bool = True
    place: dict[str, str] = field(default_factory=dict)   # name -> file
    skeleton: dict[str, bytes] = field(default_factory=dict)   # file -> the skeleton's text, as handed out


def rules_for(spec: AssignmentSpec) -> NotebookRules:
    """Targets go to the file the spec assigns them; the ``[notebook] place`` table adds other names."""
    place = {t.name: t.file for t in spec.targets}
    place.update(spec.notebook.place)
    skeleton = {f: (spec.skeleton / f).read_bytes() for f in spec.files if (spec.skeleton / f).is_file()}
    return NotebookRules(accept=spec.notebook.accept, place=place, skeleton=skeleton)


def _same_text(a: bytes, b: bytes) -> bool:
    def norm(x: bytes) -> bytes:
        return b"\n".join(line.rstrip() for line in x.replace(b"\r\n", b"\n").strip().splitlines())
    return norm(a) == norm(b)


@dataclass
class Taken:
    files: dict[str, bytes] = field(default_factory=dict)        # the .py files written from the notebooks
    problems: list[Problem] = field(default_factory=list)
    report: NotebookReport | None = None
    # a file still missing -> why the notebooks did not supply it, for the "missing" problem
    missing_why: dict[str, str] = field(default_factory=dict)


@dataclass
class _Cell:
    notebook: str
    index: int
    source: str
    statements: list[Statement] = field(default_factory=list)
    magic_lines: dict[int, str] = field(default_factory=dict)
    not_python: str | None = None   # why the whole cell was left out

    @property
    def preview(self) -> str:
        return shorten(next((ln for ln in self.source.splitlines() if ln.strip()), ""))


def notebooks_in(files: dict[str, bytes]) -> list[str]:
    return sorted(rel for rel in files if rel.lower().endswith(NOTEBOOK_SUFFIX))


def read_cells(notebook: str, data: bytes, start: int) -> list[_Cell]:
    """The notebook's code cells with their statements (numbered from ``start``); raises NotebookUnreadable."""
    cells = []
    order = start
    for code in code_cells(data):
        cell = _Cell(notebook, code.index, code.source)
        stripped = strip_magics(code.source)
        cell.magic_lines = stripped.magic_lines
        if stripped.cell_magic:
            cell.not_python = f"a cell magic ({stripped.cell_magic}) makes the whole cell something else than Python"
        else:
            try:
                tree = parse_cell(stripped.source)
            except SyntaxError as e:
                where = f"line {e.lineno}: " if e.lineno else ""
                cell.not_python = f"it does not parse as Python ({where}{e.msg or e}), so none of it was taken"
            else:
                cell.statements = cell_statements(notebook, code.index, stripped.source, tree, order)
                order += len(cell.statements)
        if code.source.strip():
            cells.append(cell)
    return cells


def take_notebooks(files: dict[str, bytes], expected: list[str], rules: NotebookRules) -> Taken:
    """What the submission's notebooks supply for the files of ``expected`` that ``files`` lacks."""
    notebooks = notebooks_in(files)
    taken = Taken()
    if not notebooks:
        return taken
    if not rules.accept:
        taken.problems.append(Problem(kind="bad_input", file=notebooks[0], message=(
            f"{', '.join(notebooks)} {'was' if len(notebooks) == 1 else 'were'} found, but this assignment is graded "
            "from .py files only; hand in " + ", ".join(expected))))
        return taken
    cells: list[_Cell] = []
    read: list[str] = []
    for nb in notebooks:
        try:
            cells += read_cells(nb, files[nb], sum(len(c.statements) for c in cells))
            read.append(nb)
        except NotebookUnreadable as e:
            taken.problems.append(Problem(kind="bad_input", file=nb, message=f"{nb} could not be read as a notebook: {e}"))
    if not read:
        return taken
    statements = [s for c in cells for s in c.statements]
    # a file left exactly as the skeleton handed it out is not the student's work: the notebook may supply it
    untouched = [f for f in expected if f in files and f in rules.skeleton and _same_text(files[f], rules.skeleton[f])]
    present = [f for f in expected if f in files and f not in untouched]
    writable = [f for f in expected if f not in present]
    source_of = {s.order: f"{s.notebook}, cell {s.cell}" for s in statements}
    placement = place_statements(statements, rules.place, writable, source_of)
    taken.files = {f: text.encode("utf-8") for f, text in placement.texts.items()}
    report = NotebookReport(notebooks=read, written=placement.holds)
    defined = placement.last_binder
    for f in present:
        names = [n for n, owner in rules.place.items() if owner == f and n in defined]
        if names:
            report.kept.append(f)
            report.notes.append(f"Your {f} counts, so the notebook's {', '.join(names)} "
                                f"{'is' if len(names) == 1 else 'are'} not used (a .py file wins over a notebook).")
    for f, names in placement.holds.items():
        instead = " (your folder's copy is the unchanged skeleton)" if f in untouched else ""
        report.notes.append(f"{f} was written from the notebook{instead}: {', '.join(names)}.")
    if len(read) > 1:
        report.notes.insert(0, f"{len(read)} notebooks were read in name order, as one: {', '.join(read)}; "
                               "a name defined in more than one keeps the definition read last.")
    if not writable:
        report.notes.append("Every file of the assignment is in your folder, so nothing was taken from the notebook.")
    for f in writable:
        if f not in placement.texts and f not in files:
            names = [n for n, owner in rules.place.items() if owner == f]
            taken.missing_why[f] = f"the notebook defines none of {', '.join(names)}" if names else ""
    report.cells = [cell_report(c, placement, rules.place, present) for c in cells]
    taken.report = report
    return taken


def _where(other: Statement, here: Statement) -> str:
    return f"cell {other.cell}" if other.notebook == here.notebook else f"{other.notebook}, cell {other.cell}"


def _files_of_same_import(s: Statement, placement: Placement) -> list[str]:
    """For an import made again, the files its first occurrence went to (it is made once, there)."""
    if s.kind != IMPORT:
        return []
    files: set[str] = set()
    for name, meaning in s.meanings:
        first = placement.last_binder.get(name)
        if first is None or first is s or dict(first.meanings).get(name) != meaning:
            return []
        files.update(placement.taken.get(first.order, []))
    return sorted(files)


def _left_out_reason(s: Statement, placement: Placement, place: dict[str, str], present: list[str]) -> str:
    if s.kind == CODE:
        needed = sorted(placement.needed_from_code.get(s.order, ()))
        if needed:
            return (f"{s.reason}; your graded code uses {', '.join(needed)}, which this sets: define "
                    f"{'it' if len(needed) == 1 else 'them'} inside the function or as a constant")
        return s.reason
    others = [placement.last_binder[n] for n in s.binds if n in placement.last_binder]
    later = others
    if later and all(b.order != s.order for b in later) and any(placement.taken.get(b.order) for b in later):
        b = next(b for b in later if placement.taken.get(b.order))
        again = "imported" if s.kind == IMPORT else "defined"
        return f"{again} again later ({_where(b, s)}); the last one counts"
    owners = {place.get(n) for n in s.binds} & set(present)
    if owners:
        return f"your {sorted(owners)[0]} counts, so this definition is not used"
    return "not used by the graded code"


def cell_report(cell: _Cell, placement: Placement, place: dict[str, str], present: list[str]) -> CellReport:
    report = CellReport(notebook=cell.notebook, cell=cell.index, preview=cell.preview)
    # (first line, last line, code, reason); reason None marks taken lines, which no merged range may cross
    entries: list[tuple[int, int, str, str | None]] = []
    if cell.not_python:
        n = len(cell.source.splitlines())
        entries.append((1, n, cell.preview, cell.not_python))
    for line, text in cell.magic_lines.items():
        if not cell.not_python:
            entries.append((line, line, shorten(text), MAGIC_REASON))
    for s in cell.statements:
        if s.kind in (QUIET, FUTURE):
            continue
        files = placement.taken.get(s.order) or _files_of_same_import(s, placement)
        if files:
            name = ", ".join(sorted(s.binds)) if s.kind not in (IMPORT, STAR_IMPORT) else s.label
            report.taken.append(TakenName(name=name, files=sorted(files)))
            entries.append((s.first_line, s.last_line, s.label, None))
        else:
            entries.append((s.first_line, s.last_line, s.label, _left_out_reason(s, placement, place, present)))
    entries.sort(key=lambda e: (e[0], e[1]))
    merged: list[list] = []
    for first, last, code, reason in entries:
        if (merged and reason is not None and merged[-1][3] == reason and reason != MAGIC_REASON
                and "which this sets" not in reason):
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last, code, reason])
    left = [(a, b, code, reason) for a, b, code, reason in merged if reason is not None]
    if len(left) > MAX_ENTRIES_PER_CELL:   # a report stays readable whatever a cell holds
        a, b = left[MAX_ENTRIES_PER_CELL][0], left[-1][1]
        more = len(left) - MAX_ENTRIES_PER_CELL
        left = left[:MAX_ENTRIES_PER_CELL] + [(a, b, "…", f"{more} more statements left out")]
    report.left_out = [LeftOut(lines=str(a) if a == b else f"{a}-{b}", code=code, reason=reason)
                       for a, b, code, reason in left]
    return report
