"""``grader report DIR``: rebuild the HTML reports of a graded class from its grading.json files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from grader.cli import UsageError
from grader.results import FULL_RESULTS_FILE

if TYPE_CHECKING:   # the report modules (jinja2, templates) are imported when a report is written, not before
    from grader.report.collect import Collection

HELP = "Write the class report and rebuild every student's report.html from grading.json."
DESCRIPTION = (
    "Read DIR/*/grading.json (as written by `grader run --out DIR`), rewrite each student's "
    "DIR/<student>/report.html and write DIR/class-report.html. Given one student's folder "
    "(it holds grading.json), rewrite only that student's report."
)


def open_out_dir(value: str) -> Collection:
    """The graded submissions under an output folder, or a UsageError saying what is wrong with it."""
    from grader.report.collect import collect

    path = Path(value)
    if not path.exists():
        raise UsageError(f"{value}: no such folder")
    if not path.is_dir():
        raise UsageError(f"{value}: not a folder")
    try:
        found = collect(path)
    except OSError as e:
        raise UsageError(f"{value}: cannot read: {e.strerror or e}") from None
    if found.empty:
        raise UsageError(f"{value}: no graded submissions (no {value.rstrip('/')}/*/{FULL_RESULTS_FILE}); run `grader run --out {value}` first")
    return found


def warn_unreadable(found: Collection) -> None:
    for u in found.unreadable:
        print(f"grader: warning: {u.folder}/{FULL_RESULTS_FILE} is unreadable: {u.reason}", file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="output folder of `grader run` (or one student's folder in it)")


def main(args: argparse.Namespace) -> int:
    from grader.report import write_class_report, write_student_report
    from grader.results import load

    path = Path(args.dir)
    if path.is_dir() and (path / FULL_RESULTS_FILE).is_file():
        try:
            result = load(path)
        except (ValueError, OSError) as e:
            raise UsageError(f"{path / FULL_RESULTS_FILE}: unreadable: {str(e).splitlines()[0]}") from None
        print(write_student_report(result, path))
        return 0
    found = open_out_dir(args.dir)
    for g in found.graded:
        write_student_report(g.result, path / g.folder)
    report = write_class_report(path, found)
    warn_unreadable(found)
    print(f"{report} ({len(found.graded)} student reports rebuilt, {len(found.unreadable)} unreadable)")
    return 0
