"""``grader audit [--assignment ID] [--corpus DIR] [--case NAME ...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.cli import UsageError

HELP = "check the hidden suite against a corpus of known-wrong and known-right submissions"
DESCRIPTION = (
    "Grade every case of the corpus (DIR/wrong/<case>/ and DIR/right/<case>/, each the files that differ from "
    "the reference plus a case.toml naming its targets) with only the tests of the classes it touches. "
    "Prints one line per case and the mutation score. Exits 1 when a wrong case escapes every test of its "
    "targets, a right case loses points, or a case cannot be graded."
)

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "tests" / "corpus"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--assignment", default=None, help="assignment id (default: the only one there is)")
    parser.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                        help=f"corpus folder (default: {DEFAULT_CORPUS})")
    parser.add_argument("--case", action="append", default=None, metavar="NAME",
                        help="audit only this case (NAME or wrong/NAME, right/NAME); repeatable")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary and the cases that are not ok")
    parser.add_argument("--exposure", action="store_true",
                        help="also list the tests that judge only values the submission reports about itself "
                             "(graded on the reference), with their points")


def main(args: argparse.Namespace) -> int:
    from grader.authoring.audit import CorpusError, run_audit
    from grader.spec import find_spec

    corpus = args.corpus or DEFAULT_CORPUS
    if not corpus.is_dir():
        raise UsageError(f"{corpus}: no such corpus folder (give one with --corpus)")
    spec = find_spec(args.assignment)
    try:
        report = run_audit(spec, corpus, only=args.case, progress=None if args.quiet else sys.stderr)
    except CorpusError as e:
        raise UsageError(str(e)) from None
    lines = report.lines()
    if args.quiet:
        table, summary = lines[: len(report.results) + 1], lines[len(report.results) + 1:]
        lines = table[:1] + [line for line, r in zip(table[1:], report.results) if not r.ok] + summary
    if args.exposure:
        from grader.authoring.exposure import exposure_lines, reference_exposure

        lines += exposure_lines(*reference_exposure(spec))
    for line in lines:
        print(line)
    return 0 if report.ok else 1
