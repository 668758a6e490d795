"""Gradebook exports: a CSV for spreadsheets and a JSON summary for scripts.

The CSV is UTF-8 *with* a byte-order mark: Excel opens a BOM-less CSV in the
system's legacy code page and garbles non-ASCII names (José, Zoë, 张伟), while
LibreOffice, Google Sheets and Python's ``utf-8-sig`` all read the BOM correctly.
Scripts should prefer the JSON summary; ``bom=False`` leaves the mark out.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from typing import Any

from grader.report.collect import Collection
from grader.report.html import percent
from grader.results import CATEGORIES, Outcome

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SUMMARY_FORMAT = "grader-class-summary"
SUMMARY_VERSION = 1


def safe_cell(text: str) -> str:
    """Text a spreadsheet shows as text: a cell that starts like a formula gets a leading quote."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def number(x: float) -> str:
    """A plain decimal (no exponent, no thousands separator) with at most 4 decimals."""
    text = f"{round(float(x), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def categories_in(found: Collection) -> list[str]:
    seen = {t.category for g in found.graded for t in g.result.tests}
    return [c for c in CATEGORIES if c in seen] + sorted(seen - set(CATEGORIES))


def gradebook(found: Collection) -> tuple[list[str], list[list[str]]]:
    cats = categories_in(found)
    header = ["student", "score", "max_score", "percent", *(f"points_{c}" for c in cats), "problems", "flags"]
    rows = []
    for g in found.graded:
        r = g.result
        by_cat = r.by_category()
        rows.append(
            [
                safe_cell(r.student),
                number(r.score),
                number(r.max_score),
                number(round(percent(r.score, r.max_score), 2)),
                *(number(by_cat[c][0]) if c in by_cat else "" for c in cats),
                str(len(r.problems)),
                str(len(r.flags)),
            ]
        )
    return header, rows


def gradebook_csv(found: Collection, *, bom: bool = True) -> str:
    """One row per readable submission; numbers with '.' as the decimal mark; CRLF line ends (RFC 4180)."""
    header, rows = gradebook(found)
    buf = io.StringIO()
    if bom:
        buf.write("\ufeff")
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


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
                "score": round(r.score, 4),
                "max_score": round(r.max_score, 4),
                "percent": round(percent(r.score, r.max_score), 2),
                "categories": {c: {"score": round(a, 4), "max_score": round(b, 4)} for c, (a, b) in r.by_category().items()},
                "targets": {c: {"score": round(a, 4), "max_score": round(b, 4)} for c, (a, b) in r.by_target().items()},
                "tests": counts,
                "problems": [p.model_dump(exclude={"detail"}) for p in r.problems],
                "flags": [f.model_dump() for f in r.flags],
                "isolation": r.isolation,
                "grader_version": r.grader_version,
                "graded_at": r.graded_at,
                "key": r.key,
            }
        )
    percents = [s["percent"] for s in students]
    stats = (
        {
            "count": len(percents),
            "mean": round(statistics.fmean(percents), 2),
            "median": round(statistics.median(percents), 2),
            "min": min(percents),
            "max": max(percents),
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
