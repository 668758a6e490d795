"""Which hidden tests judge only what the submission's process reports about itself.

The worker is the student's process. Most probes return values that can only
be produced by computing the right function on inputs the trusted side chose
(outputs under keyed weights, gradients, training losses). Others report facts
a submission could state without computing anything: a parameter count, an
output shape, a device name, the layers that ran, a timing. A test that judges
only such facts is *exposed*: a submission that defeats the worker's integrity
guard could pass it by lying. ``grader audit`` lists those tests with their
points, so an instructor knows what a lie could earn at most.

``recording()`` notes which probes each test runs on the student while
submissions are graded; ``exposed_tests`` turns that into the list.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any, Iterator

from pydantic import BaseModel

from grader.grading.client import current_test
from grader.testing import StudentImplementation

# Probes whose result a submission could state without computing the function under test.
SELF_REPORTED = frozenset({
    "describe", "param_count", "forward_shape", "shared_modules", "input_mutation", "meta_forward",
    "execution_trace", "stochasticity", "logits_check", "flops", "inference_time", "dropout_profile", "anatomy",
    "cuda_move", "device_overfit", "training_protocol", "evaluate_protocol", "compare_protocol", "device_choice",
    "first_conv_probe", "save_image_probe", "meta_cost",
})


class ExposedTest(BaseModel):
    test: str
    target: str
    points: float
    probes: list[str]


@contextlib.contextmanager
def recording() -> Iterator[dict[str, set[str]]]:
    """While active, every probe run on a student is noted under the test that ran it."""
    calls: dict[str, set[str]] = defaultdict(set)
    original = StudentImplementation.run_probe

    def run_probe(self: StudentImplementation, built: Any, name: str, params: dict[str, Any],
                  timeout: float | None) -> dict[str, Any]:
        calls[current_test() or "?"].add(name)
        return original(self, built, name, params, timeout)

    StudentImplementation.run_probe = run_probe  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        StudentImplementation.run_probe = original  # type: ignore[method-assign]


def exposed_tests(calls: dict[str, set[str]], tests: list[Any]) -> list[ExposedTest]:
    """The tests (``TestResult``s of one graded submission) whose probes on the student were all self-reported."""
    out = []
    for t in tests:
        probes = calls.get(t.nodeid) or calls.get(t.name) or set()
        if probes and probes <= SELF_REPORTED:
            out.append(ExposedTest(test=t.nodeid, target=t.target, points=round(t.max_score, 4),
                                   probes=sorted(probes)))
    return out


def exposure_lines(exposed: list[ExposedTest], total_tests: int) -> list[str]:
    points = sum(e.points for e in exposed)
    lines = [f"exposure: {len(exposed)} of {total_tests} tests ({points:g} points) judge only values the "
             "submission's process reports about itself:"]
    lines += [f"  {e.test} ({e.target}, {e.points:g} pt): {', '.join(e.probes)}" for e in exposed]
    return lines


def reference_exposure(spec: Any) -> tuple[list[ExposedTest], int]:
    """Grade the reference as a submission while recording: the exposed tests, and how many tests there are."""
    from grader.grading.engine import GradingSession

    with recording() as calls, GradingSession(spec) as session:
        result = session.grade(spec.reference, "reference")
    return exposed_tests(calls, result.tests), len(result.tests)
