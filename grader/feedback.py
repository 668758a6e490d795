"""The course's feedback policy: what of a result students are shown.

``grading.json`` is the instructor's full record and is never given to students;
everything students see (``results.json``, the HTML report) is rendered from
``for_student(result)``:

- ``hints`` (the default): what is wrong and where, never the fix;
- ``full``: the fix as well, when the suite wrote one (``Mistake(fix=...)``);
- ``score``: the points per class and nothing else (no test names, messages,
  hints, printed output or artifacts).
"""

from __future__ import annotations

from typing import Any

from grader.points import round_points
from grader.results import CATEGORY_LABELS, Outcome, SubmissionResult



def for_student(result: SubmissionResult) -> SubmissionResult:
    """A copy of ``result`` holding only what its feedback policy shows students."""
    if result.feedback == "full":
        return result
    if result.feedback == "hints":
        return result.model_copy(update={
            "tests": [t.model_copy(update={"fix": None}) for t in result.tests],
            "mistakes": [m.model_copy(update={"fix": None}) for m in result.mistakes],
        })
    tests = [t.model_copy(update={
        "name": f"{t.target}: {CATEGORY_LABELS.get(t.category, t.category)}", "message": "", "expected": None,
        "found": None, "hint": None, "fix": None, "cause": None, "mistake": None, "stdout": "", "data": {},
        "nodeid": "",
    }) for t in result.tests]
    problems = [p.model_copy(update={"message": "could not be graded", "detail": ""}) for p in result.problems]
    return result.model_copy(update={"tests": tests, "mistakes": [], "problems": problems, "artifacts": {},
                                     "flags": []})


def gradescope_tests(shown: SubmissionResult) -> list[dict[str, Any]]:
    """results.json's ``tests``: one per test, or under ``score`` one per class and category."""
    if shown.feedback == "score":
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for t in shown.tests:
            row = rows.setdefault((t.target, t.category), {
                "name": t.name, "score": 0.0, "max_score": 0.0, "passed": True, "visibility": "visible",
                "tags": [t.target, t.category]})
            row["score"] += t.score
            row["max_score"] += t.max_score
            row["passed"] = row["passed"] and t.outcome in (Outcome.passed, Outcome.skipped)
        return [{"name": r["name"], "score": round_points(r["score"]), "max_score": round_points(r["max_score"]),
                 "status": "passed" if r["passed"] else "failed", "output": "", "visibility": r["visibility"],
                 "tags": r["tags"]} for r in rows.values()]
    numbers = {m.key: n for n, m in enumerate(shown.mistakes, 1)}
    out = []
    for t in shown.tests:
        output = t.feedback()
        if t.mistake in numbers:
            entry = shown.mistakes[numbers[t.mistake] - 1]
            output += (f"\n\nThis is mistake {numbers[t.mistake]} of {len(shown.mistakes)} in your report "
                       f"({entry.target}): {entry.summary}")
        out.append({"name": t.name, "score": round_points(t.score), "max_score": round_points(t.max_score),
                    "status": t.status, "output": output, "visibility": t.visibility, "tags": [t.target, t.category]})
    return out
