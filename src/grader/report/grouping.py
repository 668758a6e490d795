"""One student's mistakes: the unit the class report counts.

A result carries its mistakes (``SubmissionResult.mistakes``, diagnosed when it
was graded). One the suite named keeps its key; one it did not name was keyed
by its class at grading, so a wrong block that fails the network's tests too
has two entries with one likely cause: here they are one, keyed by the file and
the first sentence of that likely cause with what varies between students
(numbers, quoted values) taken out. A result written before grading diagnosed mistakes
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
    # A mistake the suite did not name is keyed by its class at grading; one wrong block failing the
    # network's tests too then has two entries with one likely cause. Within a file they are one.
    merged: dict[str, FoundMistake] = {}
    for m in result.mistakes:
        title = m.hint or m.summary
        key = m.key if m.named or m.kind in ("import", "missing") else f"{m.kind}:{m.file}:{normalise(headline(title))}"
        tests = tuple(failed.get(m.key, ()))
        if key in merged:
            first = merged[key]
            merged[key] = replace(first, tests=first.tests + tests, points_lost=first.points_lost + m.points_lost)
        else:
            merged[key] = FoundMistake(key, m.kind, m.target, title, tests, m.points_lost)
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
