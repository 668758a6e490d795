"""Grade the suite's corpus once and write the compact results a synthetic class is composed from.

Run: .venv/bin/python bench/corpus_results.py [--out PATH]

It grades the reference (every test), the skeleton, and each case of
`tests/corpus/` with `grader audit`'s own function (the reference's files with
the case's file written over them, only the tests of the classes that file
defines), on the CPU even where a GPU is usable, so the GPU checks are "not
run" as on a laptop. It writes
`tests/fixtures/corpus-results.json`:

- `reference`: every test as the reference scores it;
- `skeleton`: the tests whose result differs when the untouched skeleton is
  graded (a student who left a file unfinished);
- `cases`: per case, its file and only the tests whose result differs from the
  reference's (a right case usually has none), with its problems and flags.

`tests/syntheticclass.py` builds a class of any size from it without grading
anything. The slow test `tests/test_syntheticclass.py::test_fixture_is_up_to_date`
compares it with the corpus as the slow tests grade it (once per session); when
the hidden suite or the corpus changes, run this script and commit the new file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]

from grader.results import Outcome  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "corpus-results.json"
CORPUS = ROOT / "tests" / "corpus"
ASSIGNMENT = "day09"

# What a composed student's grading.json needs of each test; output, timings and probe data are left out,
# and so is the test's mistake: the composed student's mistakes are diagnosed again from its tests.
KEPT_FIELDS = {"name", "nodeid", "target", "category", "score", "max_score", "outcome", "message",
               "expected", "found", "hint", "cause", "fix", "visibility"}
KEPT_DATA = {"error_kind", "symptom"}  # what grouping failures into mistakes reads


def compact(test: Any) -> dict[str, Any]:
    out = test.model_dump(mode="json", include=KEPT_FIELDS)
    data = {k: v for k, v in test.data.items() if k in KEPT_DATA}
    if data:
        out["data"] = data
    return out


def case_entry(graded: Any, expected: dict[tuple[str, str], dict[str, Any]], kind: str, file: str,
               description: str) -> dict[str, Any]:
    """A graded case as the tests whose result differs from the reference's, with its problems and flags."""
    return {
        "kind": kind,
        "file": file,
        "description": description,
        # tests the GPU ran (the audit on a GPU machine) are compared as "not run": the fixture is a CPU class
        "differs": [compact(t) for t in graded.tests
                    if t.outcome is not Outcome.skipped and compact(t) != expected.get((t.target, t.nodeid))
                    and (t.target, t.nodeid) in expected],
        "problems": [p.model_dump(mode="json") for p in graded.problems],
        "flags": [f.model_dump(mode="json") for f in graded.flags],
    }


def grade_corpus(progress: IO[str] | None = None, audit: Any = None) -> dict[str, Any]:
    """The reference's results, the skeleton's and each case's differences from the reference, as plain data.

    ``audit``: the corpus already graded by ``grader.authoring.audit.run_audit`` on this machine (the slow tests
    share one); otherwise it is graded here, on the CPU.
    """
    from grader.authoring.audit import run_audit
    from grader.grading.engine import GradingSession
    from grader.spec import find_spec

    spec = find_spec(ASSIGNMENT)
    out: dict[str, Any] = {"assignment": spec.id, "files": {t.name: t.file for t in spec.targets}}
    with GradingSession(spec, gpu=False) as session:
        started = time.monotonic()
        reference = session.grade(Path(spec.reference), student="reference")
        skeleton = session.grade(Path(spec.skeleton), student="skeleton")
        if progress:
            print(f"reference: {reference.score:g}/{reference.max_score:g}, skeleton: {skeleton.score:g} "
                  f"({time.monotonic() - started:.1f} s)", file=progress, flush=True)
        if audit is None:
            audit = run_audit(spec, CORPUS, session=session, progress=progress)
    # a test is known by its class and test function: two suite files may hold functions of one name
    expected = {(t.target, t.nodeid): compact(t) for t in reference.tests if t.outcome is not Outcome.skipped}
    out["max_score"] = reference.max_score
    out["reference"] = [compact(t) for t in reference.tests]
    out["skeleton"] = case_entry(skeleton, expected, "skeleton", "",
                                 "the untouched skeleton: every class still raises NotImplementedError")
    out["cases"] = {}
    for r in audit.results:
        if r.case.needs == "cuda":
            continue  # its mistake shows only on a GPU; a class graded on the CPU never shows it
        if r.graded is None:
            raise RuntimeError(f"{r.case.label} could not be graded: {r.error}")
        out["cases"][r.case.label] = case_entry(r.graded, expected, r.case.kind, r.case.files[0], r.case.description)
    return out


def write(data: dict[str, Any], path: Path = FIXTURE) -> None:
    from grader.results import write_atomic

    write_atomic(path, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIXTURE, help=f"where to write (default {FIXTURE.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    started = time.monotonic()
    data = grade_corpus(progress=sys.stderr)
    write(data, args.out)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"{len(data['cases'])} cases graded in {time.monotonic() - started:.0f} s; "
          f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
