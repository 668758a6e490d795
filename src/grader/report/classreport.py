"""The instructor's class report: distribution, pass rates, common mistakes, students, flags."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grader.report.collect import Collection, Graded, collect
from grader.report.html import (
    CATEGORY_LABELS,
    REPORT_FILE,
    clean_text,
    environment,
    nice_step,
    outcome_counts,
    percent,
)
from grader.results import CATEGORIES, Outcome, write_atomic

CLASS_REPORT_FILE = "class-report.html"
MISTAKES_SHOWN = 25
NAMES_PER_MISTAKE = 8


def report_href(folder: str) -> str:
    """A relative link from the class report to a student's report (ids may hold any character)."""
    return f"{quote(folder, safe='')}/{REPORT_FILE}"


def histogram(values: list[float], *, width: int = 640, height: int = 270) -> dict[str, Any]:
    """Ten bins of percent (the last one holds 100 and bonus scores above it), as geometry for an inline SVG."""
    counts = [0] * 10
    for v in values:
        counts[min(9, max(0, int(v // 10)))] += 1
    left, right, top, bottom = 48, 12, 22, 50
    pw, ph = width - left - right, height - top - bottom
    step = max(1, int(nice_step(max(counts) or 1, 4)))
    y_max = max(step, -(-max(counts) // step) * step)
    bw = pw / 10
    bars = []
    for i, c in enumerate(counts):
        h = ph * c / y_max
        label = f"{i * 10}–{i * 10 + 9}%" if i < 9 else "90% and up"
        bars.append(
            {
                "x": round(left + i * bw + 3, 1),
                "w": round(bw - 6, 1),
                "y": round(top + ph - h, 1),
                "h": round(h, 1),
                "cx": round(left + (i + 0.5) * bw, 1),
                "count": c,
                "label": label,
                "short": f"{i * 10}" if i < 9 else "90+",
            }
        )
    y_ticks = [(round(top + ph * (1 - v / y_max), 1), str(v)) for v in range(0, y_max + 1, step)]
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": top + ph,
        "bars": bars,
        "y_ticks": y_ticks,
        "summary": "; ".join(f"{b['label']}: {b['count']}" for b in bars),
    }


def _student_row(g: Graded, out_dir: Path) -> dict[str, Any]:
    r = g.result
    return {
        "folder": g.folder,
        "student": r.student,
        "href": report_href(g.folder),
        "has_report": (out_dir / g.folder / REPORT_FILE).is_file(),
        "score": r.score,
        "max_score": r.max_score,
        "percent": percent(r.score, r.max_score),
        "counts": outcome_counts(r.tests),
        "problems": len(r.problems),
        "flags": sorted({f.kind for f in r.flags}),
        "graded_at": r.graded_at,
    }


def class_view(found: Collection) -> dict[str, Any]:
    graded = found.graded
    students = [_student_row(g, found.out_dir) for g in graded]
    percents = [s["percent"] for s in students]

    # per test, keyed on (class, test name): test names repeat across classes
    per_test: dict[tuple[str, str], dict[str, Any]] = {}
    per_cat: dict[str, dict[str, Any]] = {}
    mistakes: dict[tuple[str, str, str], dict[str, Any]] = {}
    for g in graded:
        lost_in: set[str] = set()
        for t in g.result.tests:
            row = per_test.setdefault(
                (t.target, t.name),
                {"target": t.target, "name": t.name, "category": t.category, **{o.value: 0 for o in Outcome}},
            )
            row[t.outcome.value] += 1
            cat = per_cat.setdefault(
                t.category, {"name": t.category, "score": 0.0, "max_score": 0.0, **{o.value: 0 for o in Outcome}}
            )
            cat[t.outcome.value] += 1
            cat["score"] += t.score
            cat["max_score"] += t.max_score
            if t.outcome in (Outcome.failed, Outcome.error):
                lost_in.add(t.category)
            if t.outcome is Outcome.failed:
                m = mistakes.setdefault(
                    (t.target, t.name, t.hint or ""),
                    {"target": t.target, "name": t.name, "hint": t.hint or "", "count": 0, "students": [],
                     "example": clean_text(t.message, 600)},
                )
                m["count"] += 1
                m["students"].append({"student": g.result.student, "href": report_href(g.folder)})
        for c in lost_in:
            per_cat[c]["students_failed"] = per_cat[c].get("students_failed", 0) + 1

    def rates(row: dict[str, Any]) -> dict[str, Any]:
        ran = row["passed"] + row["failed"] + row["error"]
        row["ran"] = ran
        row["not_passed"] = row["failed"] + row["error"]
        row["pass_rate"] = percent(row["passed"], ran) if ran else None
        return row

    tests = sorted(
        (rates(r) for r in per_test.values()),
        key=lambda r: (-r["not_passed"], r["pass_rate"] if r["pass_rate"] is not None else 101, r["target"], r["name"]),
    )
    order = {c: i for i, c in enumerate(CATEGORIES)}
    categories = sorted(
        (
            dict(rates(c), label=CATEGORY_LABELS.get(c["name"], c["name"]), students_failed=c.get("students_failed", 0),
                 points_percent=percent(c["score"], c["max_score"]))
            for c in per_cat.values()
        ),
        key=lambda c: (-c["students_failed"], order.get(c["name"], 99), c["name"]),
    )
    common = sorted(mistakes.values(), key=lambda m: (-m["count"], m["target"], m["name"], m["hint"]))
    for m in common:
        m["more"] = max(0, len(m["students"]) - NAMES_PER_MISTAKE)
        m["students"] = m["students"][:NAMES_PER_MISTAKE]
        m["hint"] = clean_text(m["hint"], 600)

    flagged = [
        {
            "student": g.result.student,
            "href": report_href(g.folder),
            "problems": [
                {"kind": p.kind, "file": p.file, "message": clean_text(p.message, 600)} for p in g.result.problems
            ],
            "flags": [{"kind": f.kind, "test": f.test, "detail": clean_text(f.detail, 600)} for f in g.result.flags],
        }
        for g in graded
        if g.result.problems or g.result.flags
    ]

    stats = None
    if percents:
        stats = {
            "count": len(percents),
            "mean": statistics.fmean(percents),
            "median": statistics.median(percents),
            "min": min(percents),
            "max": max(percents),
            "full": sum(p >= 100 - 1e-9 for p in percents),
        }
    versions = sorted({g.result.grader_version for g in graded})
    return {
        "assignments": sorted({g.result.assignment for g in graded}),
        "students": students,
        "stats": stats,
        "histogram": histogram(percents) if percents else None,
        "tests": tests,
        "categories": categories,
        "mistakes": common[:MISTAKES_SHOWN],
        "mistakes_total": len(common),
        "flagged": flagged,
        "unreadable": [{"folder": u.folder, "reason": u.reason} for u in found.unreadable],
        "grader_version": ", ".join(versions) or "unknown",
        "isolation": sorted({g.result.isolation for g in graded}),
    }


def render_class(found: Collection) -> str:
    return environment().get_template("report_class.html.j2").render(**class_view(found))


def write_class_report(out_dir: Path, found: Collection | None = None) -> Path:
    """Read every ``out_dir/*/grading.json`` and write ``out_dir/class-report.html``."""
    out_dir = Path(out_dir)
    if found is None:
        found = collect(out_dir)
    path = out_dir / CLASS_REPORT_FILE
    write_atomic(path, render_class(found))
    return path
