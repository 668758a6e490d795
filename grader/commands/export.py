"""``grader export FORMAT DIR``: grades out of a graded class, for gradebooks and scripts.

Each format is one entry of ``FORMATS``; a new one (for example ``gradescope``)
is added as a sibling entry with its own arguments and run function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from grader.integrations import gradescope
from grader.cli import UsageError
from grader.commands.report import open_out_dir, warn_unreadable
from grader.results import write_atomic

if TYPE_CHECKING:   # the report modules are imported when an export is written, not before
    from grader.report.collect import Collection

HELP = "Export grades: a gradebook CSV, Canvas's or Moodle's import CSV, a JSON summary, or the Gradescope autograder."
DESCRIPTION = "Export the grades under DIR (the output folder of `grader run`) in one of the formats below."


class ExportFormat(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="output folder of `grader run`")


def _write(text: str, out: str | None, *, encoding_note: str = "") -> None:
    if out in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name")
    try:
        write_atomic(path, text)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write: {e.strerror or e}") from None
    print(f"{path}{encoding_note}", file=sys.stderr)


# ---------------------------------------------------------------- csv


def _add_out(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("-o", "--out", metavar="FILE", help=f"where to write it (default {default}; '-' for stdout)")


def _report_left_out(fmt: str, found: Collection, left_out: list[str] = ()) -> int:
    """Warn about students missing from the export; 1 when there are any."""
    warn_unreadable(found)
    names = [u.folder for u in found.unreadable] + list(left_out)
    if names:
        print(f"grader export {fmt}: {len(names)} submission(s) left out: {', '.join(names)}", file=sys.stderr)
        return 1
    return 0


def _csv_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dir(parser)
    _add_out(parser, "DIR/gradebook.csv")
    parser.add_argument("--no-bom", action="store_true",
                        help="leave out the UTF-8 byte-order mark (Excel needs it for non-ASCII names; "
                             "stdout never gets one)")


def _csv_run(args: argparse.Namespace) -> int:
    from grader.report import exports

    found = open_out_dir(args.dir)
    out = args.out if args.out is not None else str(Path(args.dir) / "gradebook.csv")
    _write(exports.gradebook_csv(found, bom=not args.no_bom and out != "-"), out)
    return _report_left_out("csv", found)


# ---------------------------------------------------------------- canvas and moodle


def _canvas_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dir(parser)
    _add_out(parser, "DIR/canvas-grades.csv")
    parser.add_argument("--column", metavar="NAME", default=None,
                        help="the assignment's column in Canvas's gradebook, as Canvas's own export names it "
                             "('Day 9 (123456)') so the grades go to that assignment; default: the assignment id, "
                             "which Canvas imports as a new assignment")


def _canvas_run(args: argparse.Namespace) -> int:
    from grader.report import exports

    found = open_out_dir(args.dir)
    column = args.column or ", ".join(sorted({g.result.assignment for g in found.graded}))
    return _write_lms_import(args, "canvas", found, lambda: exports.canvas_csv(found, column))


def _write_lms_import(args: argparse.Namespace, lms: str, found, make_csv) -> int:
    """Write one LMS's grade-import file (DIR/<lms>-grades.csv by default) and name who had no LMS id."""
    from grader.report import exports

    try:
        text, left_out = make_csv()
    except exports.NoLmsIds as e:
        raise UsageError(str(e)) from None
    _write(text, args.out if args.out is not None else str(Path(args.dir) / f"{lms}-grades.csv"))
    return _report_left_out(lms, found, [g.folder for g in left_out])


def _moodle_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dir(parser)
    _add_out(parser, "DIR/moodle-grades.csv")


def _moodle_run(args: argparse.Namespace) -> int:
    from grader.report import exports

    found = open_out_dir(args.dir)
    return _write_lms_import(args, "moodle", found, lambda: exports.moodle_csv(found))


# ---------------------------------------------------------------- json


def _json_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dir(parser)
    parser.add_argument("-o", "--out", metavar="FILE", help="write the summary to FILE instead of stdout")


def _json_run(args: argparse.Namespace) -> int:
    from grader.report import exports

    found = open_out_dir(args.dir)
    _write(exports.summary_json(found), args.out)
    warn_unreadable(found)  # they are listed under "unreadable" in the summary too
    return 0


FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("a gradebook CSV: one row per student, points per class and per category, a row of maxima",
                        _csv_arguments, _csv_run),
    "canvas": ExportFormat("Canvas's gradebook import CSV (students matched on their Canvas user id)",
                           _canvas_arguments, _canvas_run),
    "moodle": ExportFormat("Moodle's grading worksheet CSV (students matched on their participant number)",
                           _moodle_arguments, _moodle_run),
    "json": ExportFormat("a JSON summary of every student's results, for scripts", _json_arguments, _json_run),
    "gradescope": ExportFormat(gradescope.EXPORT_HELP, gradescope.export_arguments, gradescope.export_run),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    for name, fmt in FORMATS.items():
        p = sub.add_parser(name, help=fmt.help, description=fmt.help)
        fmt.add_arguments(p)
        p.set_defaults(_export=fmt.run)


def main(args: argparse.Namespace) -> int:
    return args._export(args)
