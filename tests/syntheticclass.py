"""A deterministic class of any size composed from the corpus's graded results (nothing is graded).

`tests/fixtures/corpus-results.json` (written by `bench/corpus_results.py`)
holds every test as the reference scores it, and for each corpus case the tests
whose result differs. A student here is the reference with, for each of the
assignment's files, a seeded choice of case for that file: mostly a correct one
(the reference or a right case), sometimes one of the file's wrong cases, the
common mistakes more often than the rare ones. A few students have a file that
does not import (its tests are errors and the submission is ungradable there),
hand in nothing at all, or hit a limit (a timeout on one test, a refused
network connection).

Files are chosen whole because a corpus case replaces a whole file: a mistake
in `InceptionModule` also shows in the `SimplifiedInception` tests of the same
file, as it would for a real student.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from grader.grading.mistakes import diagnose
from grader.results import Flag, Outcome, Problem, SubmissionResult, TestResult
from grader.spec import AssignmentSpec, find_spec

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "corpus-results.json"
SKELETON = "skeleton"  # the choice of the skeleton's file: left unfinished

FIRST = ["amira", "ben", "chen", "dara", "elif", "farid", "gita", "hugo", "ines", "jonas", "kofi", "lena",
         "mateo", "nadia", "omar", "priya", "quinn", "rosa", "sami", "tara", "umar", "vera", "wen", "xavi",
         "yara", "zoe", "aiko", "bruno", "carla", "dmitri"]
LAST = ["abe", "brandt", "costa", "diallo", "evans", "fischer", "garcia", "haddad", "ivanova", "jensen",
        "kim", "lopez", "mensah", "nowak", "okafor", "patel", "rossi", "silva", "tanaka", "weber"]


class CaseResults(BaseModel):
    kind: str
    file: str
    description: str
    differs: list[TestResult]
    problems: list[Problem]
    flags: list[Flag]


class CorpusResults(BaseModel):
    """The fixture's schema."""

    assignment: str
    files: dict[str, str]  # target -> file
    max_score: float
    reference: list[TestResult]
    skeleton: CaseResults  # the untouched skeleton: a file left unfinished
    cases: dict[str, CaseResults]


@lru_cache(maxsize=2)
def spec_of(assignment: str) -> AssignmentSpec:
    return find_spec(assignment)


@lru_cache(maxsize=2)
def load_fixture(path: Path = FIXTURE) -> CorpusResults:
    return CorpusResults.model_validate_json(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Mix:
    """How a class is drawn: per file the share with a mistake or left unfinished; per student, how many
    are ungradable or flagged."""

    wrong_file: float = 0.5
    unfinished_file: float = 0.08
    unfinished_bonus: float = 0.6  # a file whose tests are all bonus
    broken_file: float = 0.04
    empty: float = 0.01
    flagged: float = 0.04


def student_ids(n: int, rng: random.Random) -> list[str]:
    names = [f"{f}.{last}" for f in FIRST for last in LAST]
    rng.shuffle(names)
    if n <= len(names):
        return sorted(names[:n])
    return sorted(f"{names[i % len(names)]}{i // len(names) + 1}" for i in range(n))


def _case_weights(cases: list[str], rng: random.Random) -> list[float]:
    """A few common mistakes and a long tail: weight 1/rank over a seeded order."""
    order = list(range(len(cases)))
    rng.shuffle(order)
    weights = [0.0] * len(cases)
    for rank, i in enumerate(order, 1):
        weights[i] = 1.0 / rank
    return weights


def _broken(test: TestResult, kind: str, message: str) -> TestResult:
    return test.model_copy(update={"outcome": Outcome.error, "score": 0.0, "message": message, "expected": None,
                                   "found": None, "hint": None, "cause": None, "data": {"error_kind": kind}})


def compose(student: str, choice: dict[str, str | None], data: CorpusResults, *,
            broken: dict[str, str] | None = None, flags: list[Flag] | None = None) -> SubmissionResult:
    """One student: per file, the named case's results (None: the reference's, ``SKELETON``: the skeleton's);
    ``broken`` files are missing or do not import. Its mistakes are diagnosed from its tests as grading does."""
    broken = broken or {}
    tests = {(t.target, t.nodeid): t for t in data.reference}
    problems: list[Problem] = []
    all_flags = list(flags or [])
    for file, label in choice.items():
        if label is None or file in broken:
            continue
        case = data.skeleton if label == SKELETON else data.cases[label]
        for t in case.differs:
            if data.files.get(t.target) == file:
                tests[(t.target, t.nodeid)] = t
        problems += [p for p in case.problems if p.file in (None, file)]
        all_flags += case.flags
    for file, kind in broken.items():
        if kind == "missing":
            message = f"{file} is missing from the submission, so its classes could not be tested."
            problems.append(Problem(file=file, kind="missing", message=f"{file} is missing"))
        else:
            message = f"{file} could not be imported, so its classes could not be tested."
            problems.append(Problem(file=file, kind="import",
                                    message=f"importing {file} raised SyntaxError: invalid syntax (line 42)",
                                    detail=f'  File "{file}", line 42\n    def forward(self, x)\n'
                                           "                        ^\nSyntaxError: expected ':'"))
        for key, t in tests.items():
            if data.files.get(t.target) == file and t.outcome is not Outcome.skipped:
                tests[key] = _broken(t, kind, message)
    ordered, mistakes = diagnose(spec_of(data.assignment), [tests[(t.target, t.nodeid)] for t in data.reference],
                                 problems)
    return SubmissionResult(
        student=student, assignment=data.assignment,
        score=round(sum(t.score for t in ordered), 4), max_score=data.max_score,
        execution_time=0.0, tests=ordered, problems=problems, mistakes=mistakes, flags=all_flags,
        isolation="bwrap (synthetic class composed from the corpus's results)", grader_version="synthetic",
        graded_at="2026-05-04T10:15:00+00:00",
    )


def make_class(n: int = 200, seed: int = 9, mix: Mix = Mix(), data: CorpusResults | None = None) -> list[SubmissionResult]:
    """``n`` students, the same for the same arguments."""
    data = data or load_fixture()
    rng = random.Random(seed)
    files = sorted(set(data.files.values()))
    right = {f: [None] + [k for k, c in data.cases.items() if c.kind == "right" and c.file == f] for f in files}
    wrong = {f: [k for k, c in data.cases.items() if c.kind == "wrong" and c.file == f] for f in files}
    weights = {f: _case_weights(wrong[f], rng) for f in files}
    bonus = {f for f in files if all(t.category == "bonus" for t in data.reference if data.files[t.target] == f)}
    students = []
    for sid in student_ids(n, rng):
        choice: dict[str, str | None] = {}
        for f in files:
            if rng.random() < (mix.unfinished_bonus if f in bonus else mix.unfinished_file):
                choice[f] = SKELETON
            elif wrong[f] and rng.random() < mix.wrong_file:
                choice[f] = rng.choices(wrong[f], weights[f])[0]
            else:
                choice[f] = rng.choice(right[f]) if rng.random() < 0.3 else None
        broken: dict[str, str] = {}
        flags: list[Flag] = []
        roll = rng.random()
        if roll < mix.empty:
            broken = {f: "missing" for f in files}
        elif roll < mix.empty + mix.broken_file:
            broken = {rng.choice(files): "import"}
        elif roll < mix.empty + mix.broken_file + mix.flagged:
            flags = [rng.choice([
                Flag(kind="refused", detail="tried to open a network connection to 151.101.0.223:443"),
                Flag(kind="memory", detail="the worker went over its 2048 MiB memory limit and was restarted"),
            ])]
        students.append(compose(sid, choice, data, broken=broken, flags=flags))
    return students
