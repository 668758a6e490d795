"""Mistakes named from the catalogue, and hints that never give the solution away."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from grader.authoring.audit import load_corpus
from grader.spec import find_spec

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
HIDDEN = ROOT / "courses" / "day09" / "hidden"
REFERENCE = ROOT / "reference" / "day09"

# Lines that say nothing about a solution (and appear in every skeleton or textbook).
TRIVIAL = {"return x", "return out", "super().__init__()", "else:", "pass", ")", "]", "}", "x = self.layers(x)"}
SHORTEST_LINE = 16


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def solution_lines() -> dict[str, str]:
    """Every non-trivial code line between the reference's solution markers, normalised: where it comes from."""
    lines: dict[str, str] = {}
    for path in sorted(REFERENCE.glob("*.py")):
        inside = False
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "# BEGIN SOLUTION" in raw:
                inside = True
                continue
            if "# END SOLUTION" in raw:
                inside = False
                continue
            code = _normal(raw.split("#", 1)[0]).rstrip(",:")
            if inside and not _trivial(code):
                lines[code] = f"{path.name}:{number}"
    return lines


def _trivial(code: str) -> bool:
    """Too short or too plain to give anything away: naming a call (optimizer.zero_grad()) is naming the mistake."""
    plain_call = re.fullmatch(r"(with )?[\w.]+\([\w., ]*\)", code) is not None and "=" not in code
    return len(code) < SHORTEST_LINE or code in TRIVIAL or plain_call


def leaks(text: str, lines: dict[str, str]) -> list[str]:
    flat = _normal(text)
    return [f"{where}: {line}" for line, where in lines.items() if line in flat]


def suite_strings() -> list[tuple[str, str]]:
    """Every string constant of the hidden suites (f-string parts too), with where it is."""
    found = []
    for path in sorted(HIDDEN.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((f"{path.name}:{node.lineno}", node.value))
    return found


def test_the_leak_check_sees_a_pasted_solution_line():
    lines = solution_lines()
    assert len(lines) > 50
    pasted = "Write   nn.Conv2d(in_channels, ch1x1, kernel_size=1) first."
    assert leaks(pasted, lines)
    assert not leaks("The 1x1 branch is a convolution to ch1x1 channels.", lines)


def test_no_string_of_the_hidden_suites_holds_a_line_of_the_solution():
    lines = solution_lines()
    problems = [f"{where} {leak}" for where, text in suite_strings() for leak in leaks(text, lines)]
    assert not problems, "\n".join(problems)


def own_lines(case) -> set[str]:
    """The normalised lines of a corpus case's submission: the reference's files with the case's written over them.

    Feedback may quote the student's own code back (a traceback): that gives nothing away.
    """
    spec = find_spec("day09")
    lines = set()
    for rel in spec.files:
        path = case.folder / rel if rel in case.files else REFERENCE / rel
        if path.is_file():
            lines |= {_normal(raw.split("#", 1)[0]).rstrip(",:") for raw in path.read_text(encoding="utf-8").splitlines()}
    return lines


@pytest.mark.slow
def test_no_feedback_on_the_corpus_holds_a_line_of_the_solution(graded_corpus):
    lines = solution_lines()
    problems = []
    for result in graded_corpus.results:
        theirs = {line: where for line, where in lines.items() if line not in own_lines(result.case)}
        for failed in result.failed:
            for text in failed.texts():
                problems += [f"{result.case.label} {failed.target}/{failed.category}: {leak}" for leak in leaks(text, theirs)]
    assert not problems, "\n".join(problems[:20])


def _catalogue_module():
    sys.path.insert(0, str(HIDDEN))
    try:
        import catalogue
    finally:
        sys.path.remove(str(HIDDEN))
    return catalogue


def test_every_catalogued_mistake_has_a_corpus_case():
    catalogue = _catalogue_module()
    cases = load_corpus(find_spec("day09"), CORPUS)
    named = {c.cause for c in cases if c.kind == "wrong" and c.cause}
    wanted = {entry.cause for _, entries, _ in catalogue.CATALOGUE.values() for entry in entries}
    assert wanted <= named, f"catalogued mistakes without a corpus case: {sorted(wanted - named)}"


def test_most_wrong_cases_name_their_cause():
    cases = [c for c in load_corpus(find_spec("day09"), CORPUS) if c.kind == "wrong"]
    catalogued = [c for c in cases if c.cause]
    assert len(catalogued) >= 0.8 * len(cases), f"{len(catalogued)}/{len(cases)} wrong cases name their cause"


@pytest.mark.slow
def test_each_catalogued_case_is_named_by_its_cause(graded_corpus):
    """The suite names every catalogued case's mistake, in a test of the case's own class."""
    catalogued = [r for r in graded_corpus.of_kind("wrong") if r.case.cause]
    unnamed = [f"{r.case.label}: {r.verdict()}" for r in catalogued if not r.named]
    assert not unnamed, "\n".join(unnamed)
    wrong = graded_corpus.of_kind("wrong")
    assert sum(r.named for r in wrong) >= 0.8 * len(wrong)
