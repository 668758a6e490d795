"""``grader export FORMAT DIR``: grades out of a graded class, for gradebooks and scripts.

Each format is one entry of ``FORMATS``; a new one (for example ``gradescope``)
is added as a sibling entry with its own arguments and run function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from grader import gradescope
from grader.cli import UsageError
from grader.commands.report import open_out_dir, warn_unreadable
from grader.report import exports
from grader.results import write_atomic

HELP = "Export grades: a gradebook CSV or a JSON summary."
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


def _csv_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dir(parser)
    parser.add_argument("--out", metavar="FILE", help="where to write the CSV (default DIR/gradebook.csv; '-' for stdout)")
    parser.add_argument("--no-bom", action="store_true", help="leave out the UTF-8 byte-order mark (Excel needs it for non-ASCII names)")


def _csv_run(args: argparse.Namespace) -> int:
    found = open_out_dir(args.dir)
    out = args.out if args.out is not None else str(Path(args.dir) / "gradebook.csv")
    _write(exports.gradebook_csv(found, bom=not args.no_bom), out)
    if found.unreadable:
        warn_unreadable(found)
        names = ", ".join(u.folder for u in found.unreadable)
        print(f"grader export csv: {len(found.unreadable)} submission(s) left out of the gradebook: {names}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- json


def _json_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dir(parser)
    parser.add_argument("--out", metavar="FILE", help="write the summary to FILE instead of stdout")


def _json_run(args: argparse.Namespace) -> int:
    found = open_out_dir(args.dir)
    _write(exports.summary_json(found), args.out)
    warn_unreadable(found)  # they are listed under "unreadable" in the summary too
    return 0


FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("a gradebook CSV: one row per student, points per category", _csv_arguments, _csv_run),
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
