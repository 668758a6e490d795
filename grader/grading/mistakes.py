"""From failed tests to mistakes: each root cause once, with the tests it made fail.

A student made a few mistakes; the suite may fail many tests for each. Failures
are grouped:

- by the cause the suite named (``Mistake(cause="ResidualBlock.relu_before_add")``),
  in the class the cause names, wherever the failing test lives;
- a file that does not import is one mistake at the file and line of the error,
  also for the files that import it (``modern.py`` importing a ``resnet.py`` with
  a syntax error is ``resnet.py``'s mistake); a missing file is one mistake;
- a class still raising ``NotImplementedError`` is one mistake per class;
- a timeout, the memory limit or a crash is one mistake per class and kind;
- otherwise by the same class and the same failure once numbers and call
  arguments are set aside (so ``ResidualBlock(64, 64)`` and ``ResidualBlock(8, 16, 2)``
  failing with the same hint are one mistake);
- a failure the suite marks as a symptom (the whole output differs, the whole
  model does not train, and no cause could be named) joins the costliest mistake
  of its class that has evidence of its own, a named one first; a class with
  symptoms only has them as one mistake.

Mistakes are ordered as a student should fix them: blocks before the networks
built from them (the targets' ``depends_on`` in the spec), then by the points
they cost, then in the spec's target order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.results import MistakeEntry, MistakeKind, Outcome, Problem, TestResult
from grader.spec import AssignmentSpec

LIMIT_KINDS = {"timeout": "did not finish in time", "memory": "used more memory than allowed",
               "crash": "ended the worker process"}
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>\S+))?')
_SYNTAX_AT = re.compile(r"\((?P<file>[^(),]+\.py), line (?P<line>\d+)\)\s*$")
_NO_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'")


@dataclass
class _Group:
    key: str
    kind: MistakeKind
    target: str
    named: bool = False
    file: str | None = None
    line: int | None = None
    tests: list[TestResult] = field(default_factory=list)
    summary: str | None = None


@dataclass(frozen=True)
class ErrorLocation:
    """Where an import error really is: the file (maybe another than the one imported) and line."""

    file: str
    line: int | None
    error: str
    missing: bool = False


def normalise(text: str) -> str:
    """A failure text with call arguments, shapes and numbers set aside, for grouping."""
    text = re.sub(r"\([^()]*\)", "()", text)
    text = re.sub(r"[-+]?\d[\d,._]*", "#", text)
    return " ".join(text.lower().split())


def locate_import_error(problem: Problem, files: list[str]) -> ErrorLocation:
    """The file and line an import error comes from, read from the worker's trimmed traceback.

    A syntax error names its own file and line; an exception is where the
    innermost frame in the student's files is; ``No module named 'resnet'`` is the
    missing ``resnet.py`` when that is one of the assignment's files.
    """
    text = (problem.detail or "").strip() or problem.message
    lines = [ln for ln in text.splitlines() if ln.strip()]
    error = lines[-1].strip() if lines else problem.message
    importing = problem.file or ""
    syntax = _SYNTAX_AT.search(error)
    if syntax and syntax.group("file") in files:
        return ErrorLocation(syntax.group("file"), int(syntax.group("line")), error)
    module = _NO_MODULE.search(error)
    if module and f"{module.group('module')}.py" in files and f"{module.group('module')}.py" != importing:
        return ErrorLocation(f"{module.group('module')}.py", None, error, missing=True)
    frames = [(m.group("file"), int(m.group("line"))) for m in _FRAME.finditer(text)]
    in_files = [(f, n) for f, n in frames if f in files]
    if in_files:
        # the innermost frame of the deepest file that is the student's
        file, _ = in_files[-1]
        line = next(n for f, n in reversed(in_files) if f == file)
        return ErrorLocation(file, line, error)
    return ErrorLocation(importing, None, error)


def _import_summary(loc: ErrorLocation, importers: list[str], first_line: int | None) -> str:
    if loc.missing:
        text = f"{loc.file} is missing from your submission"
    else:
        at = f" (line {loc.line})" if loc.line else ""
        text = f"{loc.file} does not import: {_SYNTAX_AT.sub('', loc.error).strip()}{at}"
        if first_line and loc.line and first_line != loc.line:
            text += f", reached at import time from line {first_line}"
    others = [f for f in importers if f != loc.file]
    if others:
        text += f". {', '.join(others)} import{'s' if len(others) == 1 else ''} it, so could not be graded either"
    return text + ". Every test of the classes in it scores 0 until it imports."


def _class_points(tests: list[TestResult], target: str) -> tuple[float, float]:
    mine = [t for t in tests if t.target == target]
    return sum(t.score for t in mine), sum(t.max_score for t in mine)


def _points(x: float) -> str:
    return f"{round(x, 2):g}"


def dependency_depth(spec: AssignmentSpec) -> dict[str, int]:
    """0 for a target built from no other, else one more than the deepest target it is built from."""
    depends = {t.name: list(getattr(t, "depends_on", None) or []) for t in spec.targets}
    depth: dict[str, int] = {}

    def visit(name: str, seen: frozenset[str]) -> int:
        if name not in depth:
            below = [visit(d, seen | {name}) for d in depends.get(name, []) if d in depends and d not in seen]
            depth[name] = 1 + max(below) if below else 0
        return depth[name]

    for name in depends:
        visit(name, frozenset())
    return depth


def _is_symptom(t: TestResult) -> bool:
    return bool(t.data.get("symptom")) and not t.cause


def _charge_symptoms(groups: dict[str, _Group]) -> dict[str, str]:
    """Failures that only say a class's whole output differs join the mistake the class's other evidence names.

    A test the suite marks as a symptom (``data["symptom"]``: it compares the
    whole output, or trains the whole model, and could name no cause) fails
    for whatever is wrong in the class. When the same class has failures with
    evidence of their own (a named cause, a parameter count, a check of one
    property), the symptoms are charged to the costliest of those, named causes
    first; when it has none, its symptoms are one mistake together. Returns
    {old key: new key} for the groups merged away.
    """
    moved: dict[str, str] = {}
    targets = {g.target for g in groups.values()}
    for target in targets:
        mine = [g for g in groups.values() if g.target == target and g.kind in ("behaviour", "error")]
        symptoms = [g for g in mine if not g.named and g.tests and all(_is_symptom(t) for t in g.tests)]
        if not symptoms:
            continue
        evidence = [g for g in mine if g not in symptoms]

        def cost(g: _Group) -> float:
            return sum(t.max_score - t.score for t in g.tests)

        into = max(evidence or symptoms, key=lambda g: (g.named, cost(g)))
        for g in symptoms:
            if g is into:
                continue
            into.tests.extend(g.tests)
            moved[g.key] = into.key
            del groups[g.key]
    return moved


def diagnose(spec: AssignmentSpec, tests: list[TestResult], problems: list[Problem]) -> tuple[list[TestResult], list[MistakeEntry]]:
    """Group the failed tests into mistakes; returns the tests (each pointing to its mistake) and the mistakes."""
    files = list(spec.files)
    file_of = {t.name: t.file for t in spec.targets}
    order = {t.name: i for i, t in enumerate(spec.targets)}

    # import errors: the file each import problem really comes from
    located: dict[str, ErrorLocation] = {}
    first_line: dict[str, int | None] = {}
    for p in problems:
        if p.file and p.kind in ("import", "missing"):
            if p.kind == "missing":
                located[p.file] = ErrorLocation(p.file, None, p.message, missing=True)
                continue
            loc = locate_import_error(p, files)
            located[p.file] = loc
            frames = [int(m.group("line")) for m in _FRAME.finditer(p.detail or "") if m.group("file") == p.file]
            first_line[p.file] = frames[0] if frames else None
    message_file = {p.message: p.file for p in problems if p.file}

    groups: dict[str, _Group] = {}
    keyed: list[TestResult] = []
    for t in tests:
        if t.outcome not in (Outcome.failed, Outcome.error):
            keyed.append(t)
            continue
        kind = t.data.get("error_kind") if t.outcome is Outcome.error else None
        group: _Group
        if t.cause:
            owner = t.cause.split(".", 1)[0]
            owner = owner if owner in order else t.target
            group = groups.setdefault(t.cause, _Group(t.cause, "behaviour", owner, named=True,
                                                      file=file_of.get(owner)))
        elif kind in ("import", "missing") and (message_file.get(t.message) or file_of.get(t.target)) in located:
            importing = message_file.get(t.message) or file_of[t.target]
            loc = located[importing]
            group = groups.setdefault(f"{loc.file}:import", _Group(
                f"{loc.file}:import", "missing" if loc.missing else "import",
                next((n for n, f in file_of.items() if f == loc.file), t.target), file=loc.file, line=loc.line))
        elif kind in ("import", "missing"):
            group = groups.setdefault(f"{t.target}.missing", _Group(f"{t.target}.missing", "missing", t.target,
                                                                     file=file_of.get(t.target)))
            group.summary = group.summary or f"{t.message}: add it with exactly the name the skeleton uses."
        elif kind == "not_implemented":
            group = groups.setdefault(f"{t.target}.not_implemented", _Group(
                f"{t.target}.not_implemented", "not_implemented", t.target, file=file_of.get(t.target)))
        elif kind in LIMIT_KINDS:
            key = f"{t.target}.{kind}"
            group = groups.setdefault(key, _Group(key, "limit", t.target, file=file_of.get(t.target)))
        else:
            basis = t.hint or t.message if t.outcome is Outcome.failed else t.message
            key = f"{t.target}:{normalise(basis)}"
            group = groups.setdefault(key, _Group(key, "behaviour" if t.outcome is Outcome.failed else "error",
                                                  t.target, file=file_of.get(t.target)))
        group.tests.append(t)
        keyed.append(t.model_copy(update={"mistake": group.key}))

    moved = _charge_symptoms(groups)
    keyed = [t.model_copy(update={"mistake": moved[t.mistake]}) if t.mistake in moved else t for t in keyed]

    importers: dict[str, list[str]] = {}
    for importing, loc in located.items():
        importers.setdefault(loc.file, []).append(importing)

    entries = []
    for g in groups.values():
        lost = round(sum(t.max_score - t.score for t in g.tests), 6)
        # a test of the class where the mistake lives speaks for it, the costliest first
        first = max(g.tests, key=lambda t: (t.target == g.target, t.cause == g.key, t.max_score))
        hint, fix, layer = first.hint, first.fix, first.data.get("layer")
        if g.key.endswith(":import"):
            loc = located.get(g.file or "") or located[importers[g.file or ""][0]]
            summary = _import_summary(loc, sorted(importers.get(g.file or "", [g.file or ""])),
                                      first_line.get(g.file or ""))
            hint = None
        elif g.kind == "not_implemented":
            got, out_of = _class_points(tests, g.target)
            summary = (f"{g.target} is not implemented yet: {_points(got)}/{_points(out_of)} points. "
                       f"Fill in the TODO in {g.file}.")
            hint = None
        elif g.kind == "limit":
            what = LIMIT_KINDS[g.key.rsplit(".", 1)[1]]
            summary = (f"{g.target} {what}: {g.tests[0].message}. Its later tests were not run again and fail "
                       "with the same diagnosis.")
        else:
            summary = g.summary or first.message
        entries.append(MistakeEntry(
            key=g.key, kind=g.kind, target=g.target, file=g.file, line=g.line,
            layer=str(layer) if isinstance(layer, (str, int)) else None, summary=summary, hint=hint, fix=fix,
            named=g.named, tests=[t.nodeid for t in g.tests], points_lost=lost))
    depth = dependency_depth(spec)
    entries.sort(key=lambda m: (depth.get(m.target, 0), -m.points_lost, order.get(m.target, len(order)), m.key))
    return keyed, entries
