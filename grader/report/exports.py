"""Gradebook exports: a CSV for spreadsheets, Canvas's and Moodle's grade-import layouts, a JSON summary for scripts.

The gradebook CSV has one row per student and, under the header, a row with the maximum of every column. Its
columns: the student id; the LMS identifiers the submission came with (``moodle_participant``,
``canvas_user_id``, and ``canvas_late`` for Canvas's LATE marker), only when some student has them; ``score``,
``max_score`` and ``percent``; then ``class_<name>`` per class or function and ``category_<name>`` per category,
both counting the regular points only, so each family adds up to ``max_score``; then ``extra_credit``: the bonus
points, which count in ``score`` but not in ``max_score``; then how many problems and flags the result carries.

The file is UTF-8 *with* a byte-order mark: Excel opens a BOM-less CSV in the system's legacy code page and
garbles non-ASCII names (José, Zoë, 张伟), while LibreOffice, Google Sheets and Python's ``utf-8-sig`` read the
BOM correctly. Written to stdout (``--out -``) it has none: a pipe is read by programs, not by Excel.

Every number is rounded by grader.points, the rule the reports and results.json use.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

from grader.points import percent, points_text, round_points
from grader.report.collect import Collection, Graded
from grader.results import CATEGORIES, Outcome, SubmissionResult

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SUMMARY_FORMAT = "grader-class-summary"
SUMMARY_VERSION = 2      # 2: numbers rounded by grader.points; students carry their LMS identity
MAXIMA_LABEL = "(maximum)"
EXTRA_CREDIT = "bonus"   # the category whose points are extra credit


def safe_cell(text: str) -> str:
    """Text a spreadsheet shows as text: a cell that starts like a formula gets a leading quote."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def number(x: float) -> str:
    """A number as every export writes it: rounded by grader.points, a plain decimal with '.' as its mark."""
    return points_text(x)


def to_csv(rows: Iterable[list[str]], *, bom: bool = False) -> str:
    """RFC 4180: minimal quoting, CRLF line ends."""
    buf = io.StringIO()
    if bom:
        buf.write("\ufeff")
    csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


# ---------------------------------------------------------------- the gradebook


def regular_points(r: SubmissionResult, key: str) -> dict[str, tuple[float, float]]:
    """(points, maximum) per target or category, extra credit left out."""
    totals: dict[str, tuple[float, float]] = {}
    for t in r.tests:
        if t.category == EXTRA_CREDIT:
            continue
        name = getattr(t, key)
        got, out_of = totals.get(name, (0.0, 0.0))
        totals[name] = (got + t.score, out_of + t.max_score)
    return totals


def extra_credit(r: SubmissionResult) -> tuple[float, float]:
    bonus = [t for t in r.tests if t.category == EXTRA_CREDIT]
    return sum(t.score for t in bonus), sum(t.max_score for t in bonus)


def _ordered(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def lms_columns(found: Collection) -> list[tuple[str, Any]]:
    """(header, how to read it from a result) for the LMS identifiers present in the class."""
    systems = {g.result.lms.system for g in found.graded if g.result.lms}
    columns: list[tuple[str, Any]] = []
    if "moodle" in systems:
        columns.append(("moodle_participant", lambda r: r.lms.ids.get("participant", "") if _on(r, "moodle") else ""))
    if "canvas" in systems:
        columns.append(("canvas_user_id", lambda r: r.lms.ids.get("user_id", "") if _on(r, "canvas") else ""))
        columns.append(("canvas_late", lambda r: ("yes" if r.lms.late else "no") if _on(r, "canvas") else ""))
    return columns


def _on(r: SubmissionResult, system: str) -> bool:
    return r.lms is not None and r.lms.system == system


def gradebook(found: Collection) -> tuple[list[str], list[str], list[list[str]]]:
    """(header, maxima row, one row per student)."""
    results = [g.result for g in found.graded]
    targets = _ordered(name for r in results for name in regular_points(r, "target"))
    seen = {c for r in results for c in regular_points(r, "category")}
    cats = [c for c in CATEGORIES if c in seen] + sorted(seen - set(CATEGORIES))
    lms = lms_columns(found)
    header = ["student", *(name for name, _ in lms), "score", "max_score", "percent",
              *(f"class_{t}" for t in targets), *(f"category_{c}" for c in cats), "extra_credit", "problems", "flags"]

    def most(values: Iterable[float]) -> float:
        """The maximum most students were graded out of (a run without the GPU has fewer points to give)."""
        counts = Counter(round_points(v) for v in values)
        return max(counts, key=lambda v: (counts[v], v), default=0.0)

    by_target = [regular_points(r, "target") for r in results]
    by_cat = [regular_points(r, "category") for r in results]
    maxima = [MAXIMA_LABEL, *("" for _ in lms), number(most(r.max_score for r in results)),
              number(most(r.max_score for r in results)), "100",
              *(number(most(b[t][1] for b in by_target if t in b)) for t in targets),
              *(number(most(b[c][1] for b in by_cat if c in b)) for c in cats),
              number(most(extra_credit(r)[1] for r in results)), "", ""]
    rows = []
    for r, targets_of, cats_of in zip(results, by_target, by_cat):
        rows.append([
            safe_cell(r.student),
            *(safe_cell(read(r)) for _, read in lms),
            number(r.score),
            number(r.max_score),
            number(percent(r.score, r.max_score)),
            *(number(targets_of[t][0]) if t in targets_of else "" for t in targets),
            *(number(cats_of[c][0]) if c in cats_of else "" for c in cats),
            number(extra_credit(r)[0]),
            str(len(r.problems)),
            str(len(r.flags)),
        ])
    return header, maxima, rows


def gradebook_csv(found: Collection, *, bom: bool = True) -> str:
    """The gradebook (see the module's docstring); numbers with '.' as the decimal mark."""
    header, maxima, rows = gradebook(found)
    return to_csv([header, maxima, *rows], bom=bom)


# ---------------------------------------------------------------- LMS grade imports


class NoLmsIds(Exception):
    """No graded student carries the LMS's identifiers (the message says what to do)."""


def _with_lms(found: Collection, system: str) -> tuple[list[Graded], list[Graded]]:
    matched = [g for g in found.graded if _on(g.result, system)]
    if not matched:
        raise NoLmsIds(f"no graded student has a {system.capitalize()} identifier: they come from the names in a "
                       f"{system.capitalize()} bulk download (grade the downloaded zip or its folders with `grader run`)")
    return matched, [g for g in found.graded if not _on(g.result, system)]


def canvas_csv(found: Collection, column: str) -> tuple[str, list[Graded]]:
    """Canvas's gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then one column per
    assignment, and a "Points Possible" row under the header. Canvas matches rows on ID (its user id); the
    SIS columns are left empty. Returns the CSV and the students left out (no Canvas user id)."""
    matched, left_out = _with_lms(found, "canvas")
    max_score = max(g.result.max_score for g in matched)
    rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column],
            ["    Points Possible", "", "", "", "", number(max_score)]]
    for g in matched:
        r = g.result
        rows.append([safe_cell(r.lms.name or r.student), r.lms.ids["user_id"], "", "", "", number(r.score)])
    return to_csv(rows), left_out


MOODLE_COLUMNS = ["Identifier", "Full name", "Grade", "Maximum Grade", "Last modified (grade)"]


def moodle_csv(found: Collection) -> tuple[str, list[Graded]]:
    """Moodle's offline grading worksheet, as its "Upload grading worksheet" reads it: the columns Identifier
    ("Participant <number>"), Grade and Last modified (grade) are required; Full name and Maximum Grade are
    shown. Returns the CSV and the students left out (no participant number)."""
    matched, left_out = _with_lms(found, "moodle")
    rows = [MOODLE_COLUMNS]
    for g in matched:
        r = g.result
        rows.append([f"Participant {r.lms.ids['participant']}", safe_cell(r.lms.name or r.student),
                     number(r.score), number(r.max_score), r.graded_at])
    return to_csv(rows), left_out


# ---------------------------------------------------------------- the JSON summary


def _pair(got: float, out_of: float) -> dict[str, float]:
    return {"score": round_points(got), "max_score": round_points(out_of)}


def summary(found: Collection) -> dict[str, Any]:
    """A JSON-ready summary of the class, stable for scripts (see SUMMARY_VERSION)."""
    students = []
    for g in found.graded:
        r = g.result
        counts = {o.value: 0 for o in Outcome}
        for t in r.tests:
            counts[t.outcome.value] += 1
        students.append(
            {
                "student": r.student,
                "folder": g.folder,
                "assignment": r.assignment,
                "lms": r.lms.model_dump() if r.lms else None,
                "score": round_points(r.score),
                "max_score": round_points(r.max_score),
                "percent": round_points(percent(r.score, r.max_score)),
                "extra_credit": _pair(*extra_credit(r)),
                "categories": {c: _pair(a, b) for c, (a, b) in r.by_category().items()},
                "targets": {c: _pair(a, b) for c, (a, b) in r.by_target().items()},
                "tests": counts,
                "problems": [p.model_dump(exclude={"detail"}) for p in r.problems],
                "flags": [f.model_dump() for f in r.flags],
                "isolation": r.isolation,
                "grader_version": r.grader_version,
                "graded_at": r.graded_at,
                "key": r.key,
            }
        )
    percents = [percent(g.result.score, g.result.max_score) for g in found.graded]
    stats = (
        {
            "count": len(percents),
            "mean": round_points(statistics.fmean(percents)),
            "median": round_points(statistics.median(percents)),
            "min": round_points(min(percents)),
            "max": round_points(max(percents)),
        }
        if percents
        else None
    )
    return {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "assignments": sorted({g.result.assignment for g in found.graded}),
        "stats": stats,
        "students": students,
        "unreadable": [{"folder": u.folder, "reason": u.reason} for u in found.unreadable],
    }


def summary_json(found: Collection) -> str:
    return json.dumps(summary(found), indent=1, ensure_ascii=False) + "\n"
