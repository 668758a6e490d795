"""``grader run SUB [SUB ...] [--out DIR] [--jobs N]``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from grader.cli import UsageError

HELP = "grade submissions: folders, .zip files or a class's bulk download"
DESCRIPTION = (
    "Grade each submission against the assignment's hidden suite. A SUB is a submission folder (its name is the "
    "student id), a student's .zip, or a class: a folder or .zip holding one zip or folder per student (an LMS "
    "bulk download; ids come from the names, e.g. 'alice_12345_assignsubmission_file_day09.zip' -> alice; see "
    "--id-pattern). Writes DIR/<student>/results.json (Gradescope's schema), grading.json and report.html, and "
    "records the run in DIR/gradebook.sqlite (see `grader history`). A result whose submission, suite, reference "
    "and grader are unchanged is kept, so running the same command again after a crash or Ctrl-C grades only "
    "what is missing. Exits 0 when every submission has a result, whatever the scores; 1 when some could not "
    "be graded; 2 for bad usage."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from grader.classrun.executors.local import usable_cores

    parser.add_argument("submissions", nargs="+", metavar="SUB", type=Path,
                        help="submission folder, student .zip, or a class folder / bulk-download .zip")
    parser.add_argument("-o", "--out", type=Path, default=Path("out"), metavar="DIR", help="output folder (default: out)")
    parser.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                        help=f"submissions graded at once (default: the number of cores, {usable_cores()} here)")
    parser.add_argument("-a", "--assignment", default=None, help="assignment id (default: the only one there is)")
    parser.add_argument("-f", "--force", action="store_true", help="regrade even when a result for the same content exists")
    parser.add_argument("--id-pattern", metavar="REGEX", default=None,
                        help="take student ids from file and folder names with this regular expression (its group "
                             "'id', or its first group); default: the part before Moodle's or Canvas's numbers, "
                             "else the name without .zip")
    parser.add_argument("--executor", default="local", metavar="NAME",
                        help="where jobs run (default: local, forked processes on this machine)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    output.add_argument("-v", "--verbose", action="store_true",
                        help="also print one line per student as it is graded, above the live bar on a terminal")
    output.add_argument("--json", action="store_true",
                        help="print one JSON object summarising the run on stdout, and nothing else there")


def main(args: argparse.Namespace) -> int:
    from grader.classrun.executors.base import ExecutorUnavailable
    from grader.classrun.executors.registry import executor_factory
    from grader.classrun.lock import OutputBusy
    from grader.classrun.run import grade_class
    from grader.classrun.gradebook import GradebookError
    from grader.intake.ingest import IdRule, IngestError
    from grader.classrun.progress import for_stream
    from grader.spec import find_spec

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    missing = [str(p) for p in args.submissions if not p.exists()]
    if missing:
        raise UsageError(f"no such submission: {', '.join(missing)}")
    try:
        executor_factory(args.executor)
        IdRule(args.id_pattern)
    except (ExecutorUnavailable, IngestError) as e:
        raise UsageError(str(e)) from None
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: not a folder")
    spec = find_spec(args.assignment)
    progress = for_stream(sys.stderr, quiet=args.quiet, machine=args.json, verbose=args.verbose)
    try:
        summary = grade_class(spec, args.submissions, args.out, jobs=args.jobs, force=args.force,
                              executor=args.executor, id_pattern=args.id_pattern, progress=progress,
                              command=shlex.join(["grader", *sys.argv[1:]]))
    except (OutputBusy, IngestError, GradebookError, ExecutorUnavailable) as e:
        raise UsageError(str(e)) from None
    if not args.quiet:
        for warning in summary.warnings:
            print(f"grader run: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary.to_json()))
    elif not args.quiet:
        for line in summary.lines():
            print(line)
    if summary.failed and not args.json:
        print(f"grader run: {len(summary.failed)} submission(s) could not be graded; "
              "run the same command again to grade them", file=sys.stderr)
    return summary.exit_code
