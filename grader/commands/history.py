"""``grader history DIR [STUDENT]``: the runs recorded in DIR's gradebook, or one student's grades across them."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

from grader.cli import UsageError
from grader.points import points_text

HELP = "show the class runs recorded in an output folder, or how one student's grade changed"
DESCRIPTION = (
    "Read DIR/gradebook.sqlite (written by every `grader run --out DIR`). Without STUDENT: one line per run: "
    "when, who, which suite (its content key) and grader version, how many submissions were graded, kept or "
    "not graded. With STUDENT: that student's score in every run, and how it changed. Times are local."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", type=Path, help="output folder of `grader run`")
    parser.add_argument("student", metavar="STUDENT", nargs="?", help="a student id (a folder name in DIR)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")


def local_time(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def table(rows: list[tuple[str, ...]], right: set[int] = frozenset()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def points(x: float | None) -> str:
    return points_text(x)


def runs_table(runs: list) -> list[str]:
    rows = [("run", "started", "by", "assignment", "suite", "grader", "graded", "kept", "not graded", "status")]
    for r in runs:
        rows.append((str(r.id), local_time(r.started_at), f"{r.user}@{r.host}", r.assignment, r.suite_key[:10],
                     r.grader_version, str(r.graded), str(r.kept), str(r.failed), r.status))
    return table(rows, right={0, 6, 7, 8})


def student_table(grades: list) -> list[str]:
    rows = [("run", "started", "by", "suite", "result", "score", "change", "note")]
    previous: float | None = None
    suite_before: str | None = None
    for g in grades:
        score = "-" if g.score is None else f"{points(g.score)}/{points(g.max_score)}"
        change = ""
        if g.score is not None and previous is not None and abs(g.score - previous) > 1e-9:
            change = ("+" if g.score > previous else "") + points_text(g.score - previous)
        notes = []
        if suite_before is not None and g.suite_key != suite_before:
            notes.append("new suite")
        if g.detail:
            notes.append(g.detail.splitlines()[0][:80])
        rows.append((str(g.run_id), local_time(g.started_at), g.user, g.suite_key[:10],
                     {"failed": "NOT graded"}.get(g.status, g.status), score, change, "; ".join(notes)))
        if g.score is not None:
            previous = g.score
        suite_before = g.suite_key
    return table(rows, right={0, 5, 6})


def main(args: argparse.Namespace) -> int:
    from grader.classrun.gradebook import GRADEBOOK_FILE, Gradebook, GradebookError

    if not args.dir.is_dir():
        raise UsageError(f"{args.dir}: no such folder")
    path = args.dir / GRADEBOOK_FILE
    if not path.is_file():
        raise UsageError(f"{args.dir}: no gradebook ({path} does not exist); `grader run --out {args.dir}` writes it")
    try:
        book = Gradebook(path, readonly=True)
    except GradebookError as e:
        raise UsageError(str(e)) from None
    with book:
        if args.student is None:
            runs = book.runs()
            if args.json:
                print(json.dumps([asdict(r) for r in runs], indent=1))
            else:
                print("\n".join(runs_table(runs)) if runs else f"{args.dir}: no runs recorded yet")
            return 0
        grades = book.history(args.student)
        if not grades:
            known = book.students()
            hint = f"; students: {', '.join(known[:10])}{' ...' if len(known) > 10 else ''}" if known else ""
            raise UsageError(f"no grades for {args.student!r} in {args.dir}{hint}")
    if args.json:
        print(json.dumps([asdict(g) for g in grades], indent=1))
    else:
        print(f"{args.student} in {args.dir}")
        print("\n".join(student_table(grades)))
    return 0
