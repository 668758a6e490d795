"""Auditing a hidden suite with a corpus of known-wrong and known-right submissions.

Layout of a corpus folder::

    wrong/<case>/case.toml   description = "...", targets = ["ResidualBlock", ...],
                             cause = "ResidualBlock.relu_before_add" (optional: the mistake's name)
    wrong/<case>/resnet.py   the one or two files that differ from the reference
    right/<case>/case.toml   targets = the classes the case reimplements
    right/<case>/vgg.py

Each case is graded as a submission made of the reference's files with the
case's files written over them, running only the tests of the case's targets,
of every other target defined in the case's files, and of every target built
from those (the spec's ``depends_on``). A wrong case is caught
when a test of one of its targets does not pass; a right case must score full
marks on everything that ran.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from grader.points import points_text
from grader.results import MistakeEntry, Outcome, SubmissionResult
from grader.spec import AssignmentSpec

KINDS = ("wrong", "right")
CASE_FILE = "case.toml"


class CorpusError(Exception):
    """A corpus case that cannot be used; the message names the case and the problem."""


@dataclass(frozen=True)
class Case:
    kind: Literal["wrong", "right"]
    name: str
    folder: Path
    description: str
    targets: tuple[str, ...]
    files: tuple[str, ...]
    needs: str | None = None
    # The root cause the suite must name for this mistake (``Mistake(cause=...)``); None when not catalogued.
    cause: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class FailedTest:
    target: str
    category: str
    name: str
    outcome: str
    message: str
    cause: str | None = None
    expected: str | None = None
    found: str | None = None
    hint: str | None = None

    def texts(self) -> list[str]:
        """Everything a student reads about this failure."""
        return [t for t in (self.name, self.message, self.expected, self.found, self.hint) if t]


@dataclass
class CaseResult:
    case: Case
    graded_targets: list[str]
    score: float = 0.0
    max_score: float = 0.0
    failed: list[FailedTest] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    unavailable: str | None = None
    lost: float = 0.0   # points the tests that ran did not award (bonus included)
    mistakes: list[MistakeEntry] = field(default_factory=list)  # the graded result's mistakes, each once
    graded: SubmissionResult | None = None  # the full result, for tools built on the audit

    @property
    def caught_by(self) -> list[FailedTest]:
        """The failing tests tagged with one of the case's own targets."""
        return [f for f in self.failed if f.target in self.case.targets]

    @property
    def causes(self) -> set[str]:
        """The causes named by the failing tests of the case's own targets."""
        return {f.cause for f in self.caught_by if f.cause}

    @property
    def named(self) -> bool:
        """A catalogued wrong case whose mistake the suite named by its cause."""
        return self.case.cause is not None and self.case.cause in self.causes

    @property
    def ok(self) -> bool:
        if self.error is not None:
            return False
        if self.case.kind == "wrong":
            return bool(self.caught_by) and (self.case.cause is None or self.named)
        return not self.failed and self.lost < 1e-9

    def verdict(self) -> str:
        if self.unavailable is not None:
            return f"not run here: {self.unavailable}"
        if self.error is not None:
            return f"NOT GRADED: {self.error}"
        if self.case.kind == "wrong":
            if not self.caught_by:
                others = f" (other targets failed: {', '.join(sorted({f.target for f in self.failed}))})" if self.failed else ""
                return "ESCAPED" + others
            first = next((f for f in self.caught_by if self.named and f.cause == self.case.cause), self.caught_by[0])
            more = f" (+{len(self.caught_by) - 1} more)" if len(self.caught_by) > 1 else ""
            caught = f"caught by {first.target}/{first.category}: {first.name}{more}"
            if self.case.cause is None:
                return caught
            if self.named:
                return f"named {self.case.cause}, {caught}"
            named = ", ".join(sorted(self.causes)) or "no cause"
            return f"NOT NAMED: expected {self.case.cause}, the suite named {named}; {caught}"
        if self.ok:
            return f"full marks ({points_text(self.score)} points, none lost)"
        lost = "; ".join(f"{f.target}/{f.category}: {f.name}" for f in self.failed[:3])
        return f"LOST {points_text(self.lost)} point(s): {lost}"


@dataclass
class AuditReport:
    assignment: str
    results: list[CaseResult]
    seconds: float = 0.0

    def of_kind(self, kind: str) -> list[CaseResult]:
        """The cases of ``kind`` that could be checked on this machine."""
        return [r for r in self.results if r.case.kind == kind and r.unavailable is None]

    @property
    def unavailable(self) -> list[CaseResult]:
        return [r for r in self.results if r.unavailable is not None]

    @property
    def caught(self) -> int:
        return sum(1 for r in self.of_kind("wrong") if r.ok)

    @property
    def mutation_score(self) -> float:
        wrong = self.of_kind("wrong")
        return self.caught / len(wrong) if wrong else 1.0

    @property
    def escaped(self) -> list[CaseResult]:
        return [r for r in self.of_kind("wrong") if not r.ok]

    @property
    def false_alarms(self) -> list[CaseResult]:
        return [r for r in self.of_kind("right") if not r.ok]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results if r.unavailable is None)

    def lines(self) -> list[str]:
        """A plain-text table, one case a line, and the summary."""
        width = max([len(r.case.label) for r in self.results] + [4])
        out = [f"{'case':<{width}}  {'time':>6}  result"]
        for r in self.results:
            out.append(f"{r.case.label:<{width}}  {r.seconds:5.1f}s  {r.verdict()}")
        wrong, right = self.of_kind("wrong"), self.of_kind("right")
        out.append("")
        out.append(f"mutation score: {self.caught}/{len(wrong)} wrong cases caught"
                   + (f" ({100 * self.mutation_score:.0f}%)" if wrong else ""))
        catalogued = [r for r in wrong if r.case.cause is not None]
        out.append(f"mistakes named by their cause: {sum(1 for r in catalogued if r.named)}/{len(catalogued)} catalogued, "
                   f"{len(catalogued)}/{len(wrong)} wrong cases catalogued")
        out.append(f"right cases at full marks: {len(right) - len(self.false_alarms)}/{len(right)}")
        if self.unavailable:
            out.append(f"not run on this machine: {', '.join(f'{r.case.label} ({r.unavailable})' for r in self.unavailable)}")
        out.append(f"audit time: {self.seconds:.1f}s")
        return out


def _case_names(spec: AssignmentSpec) -> set[str]:
    return {t.name for t in spec.targets}


def load_case(spec: AssignmentSpec, kind: str, folder: Path) -> Case:
    label = f"{kind}/{folder.name}"
    meta = folder / CASE_FILE
    try:
        raw = tomllib.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"{label}: no {CASE_FILE}") from None
    except tomllib.TOMLDecodeError as e:
        raise CorpusError(f"{label}: {CASE_FILE} is not valid TOML: {e}") from None
    unknown = set(raw) - {"description", "targets", "needs", "cause"}
    if unknown:
        raise CorpusError(f"{label}: unknown field(s) {sorted(unknown)} in {CASE_FILE}")
    description, targets, needs = raw.get("description"), raw.get("targets"), raw.get("needs")
    cause = raw.get("cause")
    if cause is not None:
        if kind != "wrong":
            raise CorpusError(f"{label}: only a wrong case names a cause")
        if not isinstance(cause, str) or "." not in cause or cause.split(".", 1)[0] not in targets:
            raise CorpusError(f"{label}: cause must be \"<Target>.<name>\" with one of the case's targets")
    if needs not in (None, "cuda"):
        raise CorpusError(f"{label}: needs must be \"cuda\" when given")
    if not isinstance(description, str) or not description.strip():
        raise CorpusError(f"{label}: description must be a non-empty string")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise CorpusError(f"{label}: targets must be a non-empty list of class or function names")
    missing = sorted(set(targets) - _case_names(spec))
    if missing:
        raise CorpusError(f"{label}: unknown target(s) {missing}")
    files = sorted(p.name for p in folder.glob("*.py"))
    if not files:
        raise CorpusError(f"{label}: no .py file")
    stray = sorted(set(files) - set(spec.files))
    if stray:
        raise CorpusError(f"{label}: {stray} not among the assignment's files")
    return Case(kind=kind, name=folder.name, folder=folder, description=description.strip(),  # type: ignore[arg-type]
                targets=tuple(targets), files=tuple(files), needs=needs, cause=cause)


def load_corpus(spec: AssignmentSpec, corpus: Path, only: list[str] | None = None) -> list[Case]:
    """Every case under ``corpus/wrong`` and ``corpus/right`` (or only those named ``only``)."""
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise CorpusError(f"{corpus}: no such corpus folder")
    cases = []
    for kind in KINDS:
        base = corpus / kind
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            if only and folder.name not in only and f"{kind}/{folder.name}" not in only:
                continue
            cases.append(load_case(spec, kind, folder))
    if only:
        found = {c.name for c in cases} | {c.label for c in cases}
        absent = [n for n in only if n not in found]
        if absent:
            raise CorpusError(f"no such case(s) in {corpus}: {', '.join(absent)}")
    if not cases:
        raise CorpusError(f"{corpus}: no cases (expected {corpus}/wrong/<case>/{CASE_FILE} or {corpus}/right/...)")
    return cases


def graded_targets(spec: AssignmentSpec, case: Case) -> list[str]:
    """The case's targets, every target defined in one of the files the case replaces, and every target
    built from one of those (a wrong block is graded with the networks that use it, to see what they charge)."""
    names = set(case.targets) | {t.name for t in spec.targets if t.file in case.files}
    names |= {t.name for t in spec.targets if names & set(spec.dependencies_of(t.name))}
    return [t.name for t in spec.targets if t.name in names]


def build_submission(spec: AssignmentSpec, case: Case, dest: Path) -> Path:
    """The reference's files with the case's files written over them, in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in spec.files:
        src = Path(spec.reference) / rel
        if src.is_file():
            shutil.copyfile(src, dest / rel)
    for rel in case.files:
        shutil.copyfile(case.folder / rel, dest / rel)
    return dest


def grade_case(session, spec: AssignmentSpec, case: Case) -> CaseResult:  # noqa: ANN001 - a GradingSession
    targets = graded_targets(spec, case)
    result = CaseResult(case=case, graded_targets=targets)
    if case.needs == "cuda" and not session.sandbox_config.gpu:
        result.unavailable = "needs a CUDA GPU"
        return result
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grader-audit-") as tmp:
        folder = build_submission(spec, case, Path(tmp) / case.name)
        try:
            graded = session.grade(folder, student=f"{case.kind}-{case.name}", targets=set(targets))
        except Exception as e:  # noqa: BLE001 - one broken case must not stop the audit
            result.error = f"{type(e).__name__}: {str(e)[:300]}"
            result.seconds = time.monotonic() - started
            return result
    result.seconds = time.monotonic() - started
    result.graded = graded
    result.score, result.max_score = graded.score, graded.max_score
    result.lost = round(sum(t.max_score - t.score for t in graded.tests), 6)
    result.mistakes = graded.mistakes
    result.failed = [FailedTest(t.target, t.category, t.name, t.outcome.value, t.message, t.cause, t.expected, t.found,
                                t.hint)
                     for t in graded.tests if t.outcome in (Outcome.failed, Outcome.error)]
    internal = [f.detail for f in graded.flags if f.kind == "internal"]
    if internal:
        result.error = f"internal error in the suite: {internal[0][:300]}"
    elif not graded.tests:
        result.error = f"no test ran for {', '.join(targets)}"
    return result


def run_audit(spec: AssignmentSpec, corpus_dir: Path, only: list[str] | None = None,
              progress: IO[str] | None = None, session=None) -> AuditReport:  # noqa: ANN001
    """Grade every case of the corpus against ``spec``'s hidden suite."""
    from grader.classrun.executors.local import cuda_usable
    from grader.grading.engine import GradingSession

    cases = load_corpus(spec, corpus_dir, only)
    started = time.monotonic()
    own = session is None
    session = session or GradingSession(spec, gpu=cuda_usable())
    results = []
    try:
        for n, case in enumerate(cases, 1):
            r = grade_case(session, spec, case)
            results.append(r)
            if progress is not None:
                mark = "ok" if r.ok else ("--" if r.unavailable else "!!")
                print(f"[{n}/{len(cases)}] {mark} {case.label}: {r.verdict()}", file=progress, flush=True)
    finally:
        if own:
            session.close()
    return AuditReport(assignment=spec.id, results=results, seconds=time.monotonic() - started)
