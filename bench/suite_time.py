"""Time the hidden suite on the reference, per category, on this machine.

    .venv/bin/python bench/suite_time.py [--assignment day09] [--gpu] [--repeat 2] [--submission DIR ...] [--tests N]

The first grading includes the reference's own probes (memoised afterwards);
later ones show the per-submission cost in a class run. Prints the machine,
wall time per grading, and the time per category of the last grading of the
reference; then the wall time of each ``--submission`` (a wrong submission
costs other things than a right one: failures, errors, restarted workers).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import defaultdict
from pathlib import Path


def slowest(result, n: int, label: str = "") -> None:  # noqa: ANN001 - a SubmissionResult
    """The ``n`` slowest tests of one grading, with their category and outcome."""
    if n <= 0:
        return
    if label:
        print(f"{label}: the {n} slowest tests")
    for t in sorted(result.tests, key=lambda t: -t.duration_s)[:n]:
        print(f"  {t.duration_s:6.2f} s  {t.category:<9} {t.outcome.value:<7} {t.nodeid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="day09")
    parser.add_argument("--gpu", action="store_true", help="let the worker use CUDA")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--submission", action="append", default=[], metavar="DIR",
                        help="also time grading this submission folder (repeatable)")
    parser.add_argument("--tests", type=int, default=0, metavar="N",
                        help="also print the N slowest tests of the reference's last grading and of each submission")
    args = parser.parse_args()

    import torch

    from grader.grading.engine import GradingSession
    from grader.spec import find_spec

    spec = find_spec(args.assignment)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, cuda: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    started = time.monotonic()
    with GradingSession(spec, gpu=args.gpu) as session:
        session.sandbox  # start the zygote before timing
        print(f"sandbox start-up: {time.monotonic() - started:.1f} s ({session.sandbox.isolation})")
        for i in range(args.repeat):
            t0 = time.monotonic()
            result = session.grade(spec.reference, "reference")
            wall = time.monotonic() - t0
            print(f"grading {i + 1}: {wall:.1f} s wall, score {result.score:g}/{result.max_score:g}")
        for folder in args.submission:
            t0 = time.monotonic()
            other = session.grade(Path(folder))
            print(f"{folder}: {time.monotonic() - t0:.1f} s wall, score {other.score:g}/{other.max_score:g}")
            slowest(other, args.tests)
    slowest(result, args.tests, "reference")
    per_category: dict[str, float] = defaultdict(float)
    for t in result.tests:
        per_category[t.category] += t.duration_s
    for category, seconds in sorted(per_category.items(), key=lambda kv: -kv[1]):
        print(f"  {category:<10} {seconds:6.2f} s")
    gpu_tests = [t for t in result.tests if "gpu" in t.name.lower() or "cuda" in t.name.lower()]
    print(f"GPU tests: {sum(t.outcome.value == 'passed' for t in gpu_tests)}/{len(gpu_tests)} passed, "
          f"{sum(t.duration_s for t in gpu_tests):.2f} s")
    for t in gpu_tests:
        print(f"  {t.outcome.value:<8} {t.duration_s:6.2f} s  {t.target} {t.name}")
    for flag in result.flags:
        print(f"  flag {flag.kind}: {flag.detail}")
    not_passed = [f"{t.outcome.value}: {t.target} {t.name} - {t.message}" for t in result.tests if t.outcome.value != "passed"]
    for line in not_passed:
        print("  " + line)


if __name__ == "__main__":
    main()
