"""Which taken statements go into which file, and the text of each written file.

The rule, in full:

1. every name the spec places in a file (its targets, and the names of the
   ``[notebook] place`` table) goes to that file, if the notebook defines it;
   a file is written only when the notebook defines at least one of its names;
2. each written file also gets, transitively, every helper (``class``/``def``),
   constant and import that its taken code uses; a helper used by two files
   is copied into both;
3. a name that belongs to another file is imported from there
   (``from resnet import ResidualBlock``), whether that file was written from
   the notebook or handed in as a ``.py`` file;
4. a name defined twice keeps its last definition, as "Run All" would;
5. statements keep their notebook order, ``from __future__`` imports go first
   and ``*`` imports go into every written file.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from grader.intake.notebook.statements import CODE, FUTURE, STAR_IMPORT, TAKEABLE, Statement


@dataclass
class Placement:
    texts: dict[str, str] = field(default_factory=dict)              # written file -> its text
    holds: dict[str, list[str]] = field(default_factory=dict)        # written file -> the placed names it holds
    taken: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))   # statement order -> files
    last_binder: dict[str, Statement] = field(default_factory=dict)  # name -> the definition that counts
    # a statement that never runs -> the names it sets that taken code uses (they will be undefined)
    needed_from_code: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))


def module_name(file: str) -> str:
    return file[:-3].replace("/", ".") if file.endswith(".py") else file


def last_binders(statements: list[Statement]) -> dict[str, Statement]:
    """The statement whose binding of each name counts: the last, as "Run All" would leave it.

    The same import made again (``import torch`` in every cell) keeps the first
    of the run, so the files import it where the notebook first did.
    """
    binder: dict[str, Statement] = {}
    for s in statements:
        if s.kind not in TAKEABLE:
            continue
        meaning = dict(s.meanings)
        for name in s.binds:
            before = binder.get(name)
            if before is not None and name in meaning and dict(before.meanings).get(name) == meaning[name]:
                continue
            binder[name] = s
    return binder


def _closure(file: str, roots: list[str], binder: dict[str, Statement], place: dict[str, str],
             code_binders: dict[str, list[Statement]], placement: Placement) -> tuple[set[int], dict[str, set[str]]]:
    """The statements ``file`` needs (by order) and the names it imports from other files."""
    taken: set[int] = set()
    imports: dict[str, set[str]] = defaultdict(set)
    queue = list(roots)
    seen: set[str] = set()
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        owner = place.get(name, file)
        s = binder.get(name)
        if s is None:
            for code in code_binders.get(name, []):
                placement.needed_from_code[code.order].add(name)
            continue
        if owner != file:
            imports[owner].add(name)
            continue
        if s.order not in taken:
            taken.add(s.order)
            queue.extend(sorted(s.uses))
    return taken, imports


def place_statements(statements: list[Statement], place: dict[str, str], writable: list[str],
                     source_of: dict[int, str]) -> Placement:
    """Write each file of ``writable`` that the notebooks define a placed name for.

    ``place`` maps names to files; ``source_of`` names each statement's origin for
    the comments in the written files (``"day09.ipynb, cell 4"``).
    """
    placement = Placement()
    binder = last_binders(statements)
    placement.last_binder = binder
    code_binders: dict[str, list[Statement]] = defaultdict(list)
    for s in statements:
        if s.kind == CODE:
            for name in s.binds:
                code_binders[name].append(s)
    by_order = {s.order: s for s in statements}
    futures = list(dict.fromkeys(s.source.strip() for s in statements if s.kind == FUTURE))
    stars = [s.order for s in statements if s.kind == STAR_IMPORT]
    for file in writable:
        roots = [name for name, f in place.items() if f == file and name in binder]
        if not roots:
            continue
        taken, imports = _closure(file, roots, binder, place, code_binders, placement)
        taken.update(stars)
        placement.holds[file] = [name for name, f in place.items() if f == file and name in binder]
        for order in taken:
            placement.taken[order].append(file)
        placement.texts[file] = _file_text(file, placement.holds[file], futures, imports,
                                           [by_order[o] for o in sorted(taken)], source_of)
    return placement


def _file_text(file: str, names: list[str], futures: list[str], imports: dict[str, set[str]],
               taken: list[Statement], source_of: dict[int, str]) -> str:
    out = [f"# {file}: written by the grader from your notebook. It holds {', '.join(names)}",
           "# and the imports, helpers and constants they use; nothing else of the notebook runs."]
    out += futures
    out += [f"from {module_name(other)} import {', '.join(sorted(n))}" for other, n in sorted(imports.items())]
    out.append("")
    where = None
    for s in taken:
        here = source_of[s.order]
        if here != where:
            out += ["", f"# {here}"]
            where = here
        out.append(s.source.rstrip())
        if "\n" in s.source.strip():
            out.append("")
    return "\n".join(out) + "\n"
