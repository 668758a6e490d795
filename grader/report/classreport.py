"""The instructor's class report: what needs attention, what to re-teach (per class, per mistake), students."""

from __future__ import annotations

import statistics
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grader.report.collect import Collection, Graded, collect
from grader.report.grouping import mistakes_of
from grader.report.html import (
    CATEGORY_LABELS,
    REPORT_FILE,
    clean_text,
    environment,
    nice_step,
    outcome_counts,
    percent,
)
from grader.results import CATEGORIES, Outcome, SubmissionResult, write_atomic

CLASS_REPORT_FILE = "class-report.html"
OUTCOMES = tuple(o.value for o in Outcome)
MISTAKES_SHOWN = 15  # in full; the rest in a collapsed list below them
EXAMPLES_PER_MISTAKE = 5  # students linked at once; the others behind "and N more"
NOT_GRADED_KINDS = {"import", "missing"}  # listed under "Needs attention", not as mistakes
UNFINISHED_KIND = "not_implemented"  # listed apart: not a misconception to re-teach
KIND_LABELS = {"limit": "hit a limit", "error": "raised an error"}


@lru_cache(maxsize=None)
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


def _student_row(g: Graded, out_dir: Path, mistakes: int) -> dict[str, Any]:
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
        "mistakes": mistakes,
        "problems": len(r.problems),
        "flags": sorted({f.kind for f in r.flags}),
        "graded_at": r.graded_at,
    }


def class_rows(graded: list[Graded]) -> list[dict[str, Any]]:
    """Per class (exercise): mean points, pass rate (full marks on its tests that ran), students below half.

    A class none of whose tests ran (GPU checks on a machine without one) has no row.
    Weakest first: lowest pass rate, then lowest mean; classes that are all bonus last.
    """
    order: dict[str, int] = {}
    per: dict[str, list[tuple[float, float, bool]]] = {}
    for g in graded:
        totals: dict[str, list[float]] = {}
        for t in g.result.tests:
            order.setdefault(t.target, len(order))
            if t.outcome is Outcome.skipped:
                continue
            got = totals.setdefault(t.target, [0.0, 0.0, 0.0])
            got[0] += t.score
            got[1] += t.max_score
            got[2] += 1 if t.category == "bonus" else 0
        for target, (score, out_of, bonus) in totals.items():
            per.setdefault(target, []).append((score, out_of, bonus > 0))
    rows = []
    for target, marks in per.items():
        marks = [m for m in marks if m[1] > 0]
        if not marks:
            continue
        n = len(marks)
        full = sum(1 for s, m, _ in marks if s >= m - 1e-9)
        mean_score = statistics.fmean(s for s, _, _ in marks)
        mean_max = statistics.fmean(m for _, m, _ in marks)
        rows.append({
            "target": target,
            "students": n,
            "mean": mean_score,
            "max": max(m for _, m, _ in marks),
            "mean_percent": percent(mean_score, mean_max),
            "full": full,
            "pass_rate": percent(full, n),
            "below_half": sum(1 for s, m, _ in marks if s < m / 2 - 1e-9),
            "bonus": all(b for _, _, b in marks),
            "order": order[target],
        })
    return sorted(rows, key=lambda r: (r["bonus"], r["pass_rate"], r["mean_percent"], r["order"]))


def problem_lines(result: SubmissionResult) -> list[dict[str, Any]]:
    """What could not be graded, one line each; the missing files in one line."""
    missing = [p.file or "" for p in result.problems if p.kind == "missing"]
    lines = [{"kind": p.kind, "file": p.file, "message": clean_text(p.message, 300)}
             for p in result.problems if p.kind != "missing"]
    if missing:
        lines.insert(0, {"kind": "missing", "file": ", ".join(missing), "message": clean_text("not handed in")})
    return lines


def unfinished_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Classes left unfinished by the same students, as one row naming them all."""
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in rows:
        who = tuple(s["student"] for s in r["examples"] + r["others"])
        if who in merged:
            merged[who]["targets"].append(r["target"])
        else:
            merged[who] = dict(r, targets=[r["target"]])
    return list(merged.values())


def mistake_rows(graded: list[Graded]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each mistake once, with every student who made it (once each), most students first.

    A file that is missing or does not import is not a row: those students are under
    "Needs attention". Also returns how many mistakes each student folder has, unfinished
    classes left out.
    """
    entries: dict[str, dict[str, Any]] = {}
    per_student: dict[str, int] = {}
    for g in graded:
        found = [m for m in mistakes_of(g.result) if m.kind not in NOT_GRADED_KINDS]
        per_student[g.folder] = sum(1 for m in found if m.kind != UNFINISHED_KIND)
        for m in found:
            e = entries.setdefault(m.key, {"key": m.key, "kind": m.kind, "target": m.target, "title": m.title,
                                            "targets": {},
                                            "tests": {}, "variants": {}, "students": [], "lost": 0.0})
            e["students"].append({"student": g.result.student, "href": report_href(g.folder)})
            e["lost"] += m.points_lost
            e["variants"][m.title] = e["variants"].get(m.title, 0) + 1
            for target, name in m.tests:
                e["targets"][target] = None
                e["tests"][(target, name)] = None
    rows = []
    for e in entries.values():
        count = len(e["students"])
        variants = sorted(e["variants"].items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append({
            "key": e["key"],
            "kind": e["kind"],
            "kind_label": KIND_LABELS.get(e["kind"], ""),
            "target": e["target"],
            "also": [t for t in e["targets"] if t != e["target"]],
            "title": clean_text(variants[0][0], 600),
            "variants": [clean_text(v, 300) for v, _ in variants[1:4]],
            "more_variants": max(0, len(variants) - 4),
            "count": count,
            "lost": e["lost"] / count,
            "tests": [{"target": t, "name": n} for t, n in e["tests"]],
            "examples": e["students"][:EXAMPLES_PER_MISTAKE],
            "others": e["students"][EXAMPLES_PER_MISTAKE:],
        })
    rows.sort(key=lambda r: (-r["count"], -r["lost"], r["target"], r["title"]["text"]))
    return rows, per_student


def class_view(found: Collection) -> dict[str, Any]:
    graded = found.graded
    all_mistakes, mistakes_per_student = mistake_rows(graded)
    mistakes = [m for m in all_mistakes if m["kind"] != UNFINISHED_KIND]
    unfinished = unfinished_rows([m for m in all_mistakes if m["kind"] == UNFINISHED_KIND])
    students = [_student_row(g, found.out_dir, mistakes_per_student.get(g.folder, 0)) for g in graded]
    percents = [s["percent"] for s in students]

    # per test, keyed on (class, test name): test names repeat across classes
    per_test: dict[tuple[str, str], dict[str, Any]] = {}
    per_cat: dict[str, dict[str, Any]] = {}
    for g in graded:
        lost_in: set[str] = set()
        for t in g.result.tests:
            outcome = t.outcome.value
            row = per_test.get((t.target, t.name))
            if row is None:
                row = per_test[(t.target, t.name)] = {"target": t.target, "name": t.name, "category": t.category,
                                                      "reasons": {}, **dict.fromkeys(OUTCOMES, 0)}
            row[outcome] += 1
            if outcome == "skipped" and t.message:
                row["reasons"][t.message] = None
            cat = per_cat.get(t.category)
            if cat is None:
                cat = per_cat[t.category] = {"name": t.category, "score": 0.0, "max_score": 0.0,
                                             **dict.fromkeys(OUTCOMES, 0)}
            cat[outcome] += 1
            cat["score"] += t.score
            cat["max_score"] += t.max_score
            if t.outcome in (Outcome.failed, Outcome.error):
                lost_in.add(t.category)
        for c in lost_in:
            per_cat[c]["students_failed"] = per_cat[c].get("students_failed", 0) + 1

    def rates(row: dict[str, Any]) -> dict[str, Any]:
        ran = row["passed"] + row["failed"] + row["error"]
        row["ran"] = ran
        row["not_passed"] = row["failed"] + row["error"]
        row["pass_rate"] = percent(row["passed"], ran) if ran else None
        return row

    all_tests = [rates(r) for r in per_test.values()]
    tests = sorted(
        (r for r in all_tests if r["ran"]),
        key=lambda r: (-r["not_passed"], r["pass_rate"], r["target"], r["name"]),
    )
    not_run = sorted((r for r in all_tests if not r["ran"]), key=lambda r: (r["target"], r["name"]))
    not_run_reasons = list(dict.fromkeys(reason for r in not_run for reason in r["reasons"]))
    order = {c: i for i, c in enumerate(CATEGORIES)}
    categories = sorted(
        (
            dict(rates(c), label=CATEGORY_LABELS.get(c["name"], c["name"]), students_failed=c.get("students_failed", 0),
                 points_percent=percent(c["score"], c["max_score"]))
            for c in per_cat.values()
        ),
        key=lambda c: (-c["students_failed"], order.get(c["name"], 99), c["name"]),
    )
    categories = [c for c in categories if c["ran"]]

    ungradable, flagged = [], []
    for g in graded:
        r = g.result
        if not (r.problems or r.flags):
            continue
        row = {
            "student": r.student,
            "href": report_href(g.folder),
            "percent": percent(r.score, r.max_score),
            "problems": problem_lines(r),
            "flags": [{"kind": f.kind, "test": f.test, "detail": clean_text(f.detail, 300)} for f in r.flags],
        }
        (ungradable if r.problems else flagged).append(row)

    stats = None
    if percents:
        stats = {
            "count": len(percents),
            "mean": statistics.fmean(percents),
            "median": statistics.median(percents),
            "min": min(percents),
            "max": max(percents),
            "full": sum(p >= 100 - 1e-9 for p in percents),
            "below_half": sum(p < 50 - 1e-9 for p in percents),
        }
    versions = sorted({g.result.grader_version for g in graded})
    return {
        "assignments": sorted({g.result.assignment for g in graded}),
        "students": students,
        "stats": stats,
        "histogram": histogram(percents) if percents else None,
        "classes": class_rows(graded),
        "tests": tests,
        "not_run": not_run,
        "not_run_reasons": not_run_reasons,
        "categories": categories,
        "mistakes": mistakes[:MISTAKES_SHOWN],
        "rare_mistakes": mistakes[MISTAKES_SHOWN:],
        "mistakes_total": len(mistakes),
        "unfinished": unfinished,
        "flagged": ungradable + flagged,
        "ungradable": ungradable,
        "only_flagged": flagged,
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
