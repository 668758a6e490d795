"""``grader run SUB [SUB ...] [--out DIR] [--jobs N]``."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from grader.cli import UsageError

HELP = "grade one or more submission folders"
DESCRIPTION = (
    "Grade each submission folder (its name is the student id) against the assignment's hidden suite. "
    "Writes DIR/<student>/results.json (Gradescope's schema), grading.json (everything) and report.html. "
    "A result whose submission, suite, reference and grader are unchanged is kept, not regraded. "
    "Exits 0 when every submission was graded, whatever the scores."
)

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", nargs="+", metavar="SUB", type=Path, help="submission folders")
    parser.add_argument("--out", type=Path, default=Path("out"), metavar="DIR", help="output folder (default: out)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="submissions graded at once (default: number of cores)")
    parser.add_argument("--assignment", default=None, help="assignment id (default: the only one there is)")
    parser.add_argument("--force", action="store_true", help="regrade even when a result for the same content exists")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def student_id(path: Path) -> str:
    name = path.resolve().name
    if not STUDENT_ID.match(name):
        raise UsageError(f"{path}: folder name {name!r} is not a usable student id (letters, digits, . _ @ + -)")
    return name


def main(args: argparse.Namespace) -> int:
    from grader.classrun import grade_class
    from grader.spec import find_spec

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    missing = [str(p) for p in args.submissions if not p.exists()]
    if missing:
        raise UsageError(f"no such submission: {', '.join(missing)}")
    ids = [student_id(p) for p in args.submissions]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UsageError(f"two submissions share the student id {dupes[0]!r}")
    spec = find_spec(args.assignment)
    summary = grade_class(spec, list(zip(ids, args.submissions)), args.out, jobs=args.jobs, force=args.force,
                          progress=None if args.quiet else sys.stderr)
    if not args.quiet:
        for line in summary.lines():
            print(line)
    return 0
