"""One student's mistakes: the unit the class report counts.

A result carries its mistakes (``SubmissionResult.mistakes``, diagnosed when it
was graded). A wrong block that fails the network's tests too may be charged
there again, under a cause named per class or, unnamed, keyed by class: here
entries of one file whose likely cause opens with the same sentence (numbers
and quoted values set aside) are one mistake, under the first entry's key
(the named cause, else the file and that sentence). A result written before grading diagnosed mistakes
has none, and its failed tests are grouped the same way: by the cause the test
named (``TestResult.cause``), else by its likely cause (the hint), else by its
class and message. Either way one mistake that fails many tests is one
mistake, and "padding=0" and "padding=1" where 2 is needed are the same one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from grader.results import Outcome, SubmissionResult, TestResult

# numbers (with thousands separators, signs, decimals), except in a kernel size like 5x5 or a name like conv2
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?(?![\dx])(?!\w)")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_SPACE = re.compile(r"\s+")
_FIRST_SENTENCE = re.compile(r"(.+?[.!?])\s+(?=[A-Z])", re.DOTALL)


@lru_cache(maxsize=4096)
def headline(text: str) -> str:
    """The first sentence: the diagnosis; what follows details it for one student's code."""
    match = _FIRST_SENTENCE.match(text.strip())
    return match.group(1) if match else text.strip()


@lru_cache(maxsize=4096)  # a class repeats the same few hundred texts
def normalise(text: str) -> str:
    """Text with what varies between students (numbers, quoted values, spacing, case) made uniform."""
    text = _QUOTED.sub("'…'", text)
    text = _NUMBER.sub("#", text)
    return _SPACE.sub(" ", text).strip().rstrip(".").lower()


def mistake_key(test: TestResult) -> str:
    """What makes two failures the same mistake."""
    if test.cause:
        return f"cause:{test.cause}"
    if test.hint:
        return f"hint:{normalise(headline(test.hint))}"
    return f"test:{test.target}:{normalise(test.message)}"


@dataclass(frozen=True)
class FoundMistake:
    key: str  # the same in every student who made it
    kind: str  # as MistakeEntry.kind: "behaviour", "not_implemented", "import", "missing", "limit", "error"
    target: str  # the class it is charged to
    title: str  # its likely cause, else what failed
    tests: tuple[tuple[str, str], ...]  # (class, test name) of every test it failed
    points_lost: float


def mistakes_of(result: SubmissionResult) -> list[FoundMistake]:
    """The submission's mistakes, each once."""
    if not result.mistakes:
        return grouped_failures(result)
    failed: dict[str, list[tuple[str, str]]] = {}
    for t in result.tests:
        if t.mistake:
            failed.setdefault(t.mistake, []).append((t.target, t.name))
    # One wrong block also fails the networks built from it; grading may then charge it in each class
    # (under a cause named per class, or, unnamed, keyed by class). Entries of one file whose likely
    # cause opens with the same sentence are one mistake here, under the first (blocks come first).
    merged: dict[tuple[str | None, str], FoundMistake] = {}
    for m in result.mistakes:
        title = m.hint or m.summary
        same = (m.file, f"{m.kind}:{normalise(headline(title))}")
        if m.kind in ("import", "missing"):
            same = (m.file, m.key)
        tests = tuple(failed.get(m.key, ()))
        if same in merged:
            first = merged[same]
            merged[same] = replace(first, tests=first.tests + tests, points_lost=first.points_lost + m.points_lost)
        else:
            key = m.key if m.named or m.kind in ("import", "missing") else f"{m.kind}:{m.file}:{same[1]}"
            merged[same] = FoundMistake(key, m.kind, m.target, title, tests, m.points_lost)
    return list(merged.values())


def grouped_failures(result: SubmissionResult) -> list[FoundMistake]:
    """Failed tests grouped by ``mistake_key``, in the order of the tests that first show them."""
    groups: dict[str, list[TestResult]] = {}
    for t in result.tests:
        if t.outcome is Outcome.failed:
            groups.setdefault(mistake_key(t), []).append(t)
    return [FoundMistake(key, "behaviour", tests[0].target, tests[0].hint or tests[0].message,
                         tuple((t.target, t.name) for t in tests), sum(t.max_score - t.score for t in tests))
            for key, tests in groups.items()]
