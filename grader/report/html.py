"""The per-student HTML report: one self-contained file, readable without JavaScript.

Everything a student wrote or printed reaches the page only through Jinja2 with
autoescaping on, and the page carries a Content-Security-Policy that forbids
scripts, so even a mistake in a template cannot run code in a reader's browser.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from grader.points import percent, points_text  # noqa: F401 - percent is imported from here too
from grader.report.notebook import notebook_view
from grader.results import (
    CATEGORIES,
    CATEGORY_LABELS,
    Outcome,
    SubmissionResult,
    TestResult,
    for_student,
    write_atomic,
)

REPORT_FILE = "report.html"
STDOUT_LIMIT = 2_000  # characters of student-printed output shown per test
TEXT_LIMIT = 4_000  # characters of any other message (expected/found/traceback) shown
TEMPLATES = Path(__file__).resolve().parent / "templates"


# icon, word, css class: the word is always printed, so colour is never the only signal
OUTCOME_STYLE = {
    Outcome.passed: ("✓", "Passed", "passed"),
    Outcome.failed: ("✗", "Failed", "failed"),
    Outcome.error: ("!", "Error", "error"),
    Outcome.skipped: ("–", "Skipped", "skipped"),
}

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# ---------------------------------------------------------------- small helpers


def clean_text(text: str | None, limit: int = TEXT_LIMIT) -> dict[str, Any]:
    """Text for display: terminal colour codes and control characters removed, cut at ``limit``."""
    text = _CONTROL.sub("", _ANSI.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n")))
    total = len(text)
    return {"text": text[:limit], "truncated": total > limit, "shown": min(total, limit), "total": total}


def points(x: float | None) -> str:
    """Points as every output shows them (grader.points)."""
    return points_text(x, missing="–")


def thousands(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:,.2f}" if x != int(x) else f"{int(x):,}"
    return str(x)


def slug(text: str, taken: set[str]) -> str:
    """An id safe in a URL fragment, unique within ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "section"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    if raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def _tick_label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10_000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.4g}"


def line_plot(
    series: list[tuple[str, list[Any], str]],
    *,
    clip_to: list[Any] | None = None,
    width: int = 640,
    height: int = 300,
) -> dict[str, Any] | None:
    """Geometry of a line chart: numbers only, so the template places every label (escaped).

    ``series`` holds (label, values, css class); None, NaN and inf are gaps. When
    ``clip_to`` (the reference) is given, values above 4x its largest value are
    drawn on the top edge so one diverging run does not flatten the other line.
    """
    left, right, top, bottom = 64, 16, 14, 56
    finite = [f for _, vals, _ in series for f in map(_finite, vals) if f is not None]
    if not finite:
        return None
    lo, hi = min(0.0, min(finite)), max(finite)
    clipped_at = None
    ref = [f for f in map(_finite, clip_to or []) if f is not None]
    if ref and max(ref) > 0 and hi > 4 * max(ref):
        hi = clipped_at = 4 * max(ref)
    if hi <= lo:
        hi = lo + 1.0
    step = nice_step(hi - lo, 4)
    hi = math.ceil(hi / step - 1e-9) * step
    lo = math.floor(lo / step + 1e-9) * step
    n = max(len(vals) for _, vals, _ in series)
    pw, ph = width - left - right, height - top - bottom

    def sx(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def sy(v: float) -> float:
        return top + ph * (1 - (min(v, hi) - lo) / (hi - lo))

    lines = []
    for label, vals, cls in series:
        segments: list[list[tuple[float, float]]] = [[]]
        gaps = 0
        for i, v in enumerate(vals):
            f = _finite(v)
            if f is None:
                gaps += 1
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append((round(sx(i), 1), round(sy(f), 1)))
        segments = [s for s in segments if s]
        lines.append(
            {
                "label": label,
                "cls": cls,
                "polylines": [" ".join(f"{x},{y}" for x, y in s) for s in segments if len(s) > 1],
                "dots": [s[0] for s in segments if len(s) == 1],
                "gaps": gaps,
            }
        )
    y_ticks = []
    v = lo
    while v <= hi + step / 2:
        y_ticks.append((round(sy(v), 1), _tick_label(v)))
        v += step
    x_step = max(1, int(nice_step(max(n - 1, 1), 5)))
    steps = sorted({1, *range(x_step, n + 1, x_step)})  # steps are numbered from 1
    x_ticks = [(round(sx(s - 1), 1), str(s)) for s in steps]
    return {
        "width": width,
        "height": height,
        "left": left,
        "top": top,
        "right": width - right,
        "bottom": height - bottom,
        "lines": lines,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "clipped_at": _tick_label(clipped_at) if clipped_at is not None else None,
        "steps": n,
    }


# ---------------------------------------------------------------- jinja


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # autoescape=True for every template: the names end in .j2, which
    # select_autoescape() would not recognise as HTML.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["points"] = points
    env.filters["pct"] = points_text   # a percentage, rounded as points are
    env.filters["thousands"] = thousands
    env.filters["point_word"] = lambda x: "point" if x == 1 else "points"
    env.globals["CATEGORY_LABELS"] = CATEGORY_LABELS
    return env


# ---------------------------------------------------------------- views


def test_view(t: TestResult, anchor: str) -> dict[str, Any]:
    icon, word, cls = OUTCOME_STYLE[t.outcome]
    return {
        "anchor": anchor,
        "name": t.name,
        "target": t.target,
        "category": t.category,
        "outcome": t.outcome.value,
        "icon": icon,
        "word": word,
        "cls": cls,
        "score": t.score,
        "max_score": t.max_score,
        "hidden": t.visibility != "visible",
        "message": clean_text(t.message),
        "expected": clean_text(t.expected) if t.expected is not None else None,
        "found": clean_text(t.found) if t.found is not None else None,
        "hint": clean_text(t.hint) if t.hint else None,
        "notes": [clean_text(n) for n in t.notes],
        "stdout": clean_text(t.stdout, STDOUT_LIMIT) if t.stdout else None,
        "duration_s": t.duration_s,
    }


def _layer_rows(rows: Any) -> list[dict[str, str]]:
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        out.append(
            {
                "type": str(row.get("type", "")),
                "kernel": str(row.get("kernel", "")),
                "stride": str(row.get("stride", "")),
                "groups": thousands(row.get("groups")),
                "out_shape": str(row.get("out_shape", "")),
                "params": thousands(row.get("params")),
            }
        )
    return out


def _describe(row: dict[str, str] | None) -> str:
    if row is None:
        return "no layer"
    bits = [row["type"]]
    if row["kernel"]:
        bits.append(f"kernel {row['kernel']}")
    if row["stride"]:
        bits.append(f"stride {row['stride']}")
    if row["groups"] not in ("", "–", "1"):
        bits.append(f"groups {row['groups']}")
    bits.append(f"output {row['out_shape']}, {row['params']} parameters")
    return ", ".join(bits)


def layer_table_view(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    student, reference = _layer_rows(data.get("student")), _layer_rows(data.get("reference"))
    if not student and not reference:
        return None
    div = data.get("first_divergence")
    if isinstance(div, bool) or not isinstance(div, int) or not 0 <= div < max(len(student), len(reference)):
        div = None
    summary = None
    if div is not None:
        mine = student[div] if div < len(student) else None
        theirs = reference[div] if div < len(reference) else None
        summary = {"index": div + 1, "student": _describe(mine), "reference": _describe(theirs)}
    return {"student": student, "reference": reference, "divergence": div, "summary": summary}


def _first_bad(values: list[Any]) -> int | None:
    for i, v in enumerate(values):
        if _finite(v) is None:
            return i
    return None


def loss_curve_view(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    student = data.get("student") if isinstance(data.get("student"), list) else []
    reference = data.get("reference") if isinstance(data.get("reference"), list) else []
    series = [(lbl, vals, cls) for lbl, vals, cls in (("Your model", student, "student"), ("Reference", reference, "reference")) if vals]
    plot = line_plot(series, clip_to=reference) if series else None
    if plot is None:
        return None

    def ends(vals: list[Any]) -> dict[str, Any] | None:
        finite = [(i + 1, f) for i, f in enumerate(map(_finite, vals)) if f is not None]
        if not finite:
            return None
        (first_step, first), (last_step, last) = finite[0], finite[-1]
        return {
            "first": _tick_label(first),
            "first_step": first_step,
            "last": _tick_label(last),
            "last_step": last_step,
        }

    bad = _first_bad(student)
    return {
        "plot": plot,
        "student": ends(student),
        "reference": ends(reference),
        "student_bad_step": bad + 1 if bad is not None else None,
        "student_bad_count": sum(_finite(v) is None for v in student),
        "student_steps": len(student),
    }


def comparison_view(rows: Any) -> list[dict[str, Any]]:
    """The architecture comparison's rows, by model name: the same table whatever order the tests that measured
    them ran in (a submission graded alone runs its suite in lanes side by side)."""
    out = []
    rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    for row in sorted(rows, key=lambda r: str(r.get("model", "")).casefold()):
        params, ref = row.get("params"), row.get("ref_params")
        delta = params - ref if isinstance(params, int) and isinstance(ref, int) else None
        flops, ref_flops = row.get("flops"), row.get("ref_flops")
        ms = _finite(row.get("inference_ms"))
        out.append(
            {
                "model": str(row.get("model", "")),
                "params": thousands(params),
                "ref_params": thousands(ref),
                "delta": delta,
                "delta_text": (f"{delta:+,}" if delta else "matches") if delta is not None else "–",
                "inference_ms": f"{ms:.2f}" if ms is not None else "–",
                "flops": thousands(flops),
                "ref_flops": thousands(ref_flops),
                "flops_match": flops == ref_flops if flops is not None and ref_flops is not None else None,
            }
        )
    return out


def _artifact(result: SubmissionResult, key: str) -> Any:
    value = result.artifacts.get(key) if isinstance(result.artifacts, dict) else None
    return value


def outcome_counts(tests: Iterable[TestResult]) -> dict[str, int]:
    counts = {o.value: 0 for o in Outcome}
    for t in tests:
        counts[t.outcome.value] += 1
    return counts


# Words of the suites that a student may not know, explained once where they appear.
GLOSSARY = {
    "meta device": "The meta device is PyTorch's device for tensors that have a shape but no values; "
                   "a forward there fails when your code makes a tensor on the CPU (torch.zeros(...) without "
                   "device=) or keeps a plain tensor attribute instead of a buffer: code that would also break on a GPU.",
}


def _status(tests: list[TestResult], mistakes: list[dict[str, Any]]) -> tuple[str, str]:
    """A class's status in words, and its css class."""
    if tests and all(t.outcome is Outcome.skipped for t in tests):
        return "Not run on this machine", "skipped"
    if not mistakes:
        return "Correct", "passed"
    own = [m for m in mistakes if m["own"]]
    kinds = {m["kind"] for m in own}
    if "import" in kinds:
        return "Does not import", "error"
    if "missing" in kinds:
        return "Missing", "error"
    if "not_implemented" in kinds:
        return "Not implemented yet", "error"
    if own:
        return f"{len(own)} mistake{'s' if len(own) > 1 else ''}", "failed"
    return "Affected by another class's mistake", "failed"


def student_view(result: SubmissionResult) -> dict[str, Any]:
    shown = for_student(result)
    taken: set[str] = {"main", "summary", "to-fix", "categories", "problems", "comparison", "targets", "passed",
                       "skipped", "details", "terms"}
    layer_tables = _artifact(shown, "layer_tables")
    loss_curves = _artifact(shown, "loss_curves")
    layer_tables = layer_tables if isinstance(layer_tables, dict) else {}
    loss_curves = loss_curves if isinstance(loss_curves, dict) else {}

    views = {id(t): test_view(t, f"test-{i}") for i, t in enumerate(shown.tests, 1)}
    problem_detail = {p.file: p.detail for p in shown.problems if p.file and p.detail}

    mistakes: list[dict[str, Any]] = []
    placed: set[int] = set()
    for n, m in enumerate(shown.mistakes, 1):
        members = [t for t in shown.tests if t.mistake == m.key]
        placed.update(id(t) for t in members)
        tests = []
        for t in members:
            v = dict(views[id(t)])
            v["hint"] = v["hint"] if t.hint and t.hint != m.hint else None
            v["message"] = v["message"] if t.message != m.summary else clean_text("")
            tests.append(v)
        error = problem_detail.get(m.file) if m.kind in ("import", "missing") else None
        mistakes.append({
            "n": n, "anchor": f"mistake-{n}", "kind": m.kind, "target": m.target, "where": m.where(),
            "summary": clean_text(m.summary), "hint": clean_text(m.hint) if m.hint else None,
            "fix": clean_text(m.fix) if m.fix else None, "error": clean_text(error) if error else None,
            "points_lost": m.points_lost, "tests": tests, "classes": sorted({t.target for t in members}),
        })
    # failures no mistake claims (a result written before mistakes existed): listed as they are
    unplaced = [views[id(t)] for t in shown.tests
                if t.outcome in (Outcome.failed, Outcome.error) and id(t) not in placed]
    if unplaced:
        mistakes.append({
            "n": len(mistakes) + 1, "anchor": f"mistake-{len(mistakes) + 1}", "kind": "behaviour", "target": "",
            "where": "", "summary": clean_text("Other failed tests"), "hint": None, "fix": None, "error": None,
            "points_lost": sum(v["max_score"] - v["score"] for v in unplaced), "tests": unplaced,
            "classes": sorted({v["target"] for v in unplaced}),
        })

    by_target = shown.by_target()
    names = list(dict.fromkeys([t.target for t in shown.tests] + list(layer_tables) + list(loss_curves)))
    targets = []
    for name in names:
        mine = [t for t in shown.tests if t.target == name]
        touching = [dict(m, own=m["target"] == name) for m in mistakes if name in m["classes"]]
        status, cls = _status(mine, touching)
        got, out_of = by_target.get(name, (0.0, 0.0))
        targets.append({
            "name": name, "anchor": slug(f"target-{name}", taken), "score": got, "max_score": out_of,
            "percent": percent(got, out_of), "status": status, "cls": cls, "mistakes": touching,
            "counts": outcome_counts(mine),
            "passed": [views[id(t)] for t in mine if t.outcome is Outcome.passed],
            "layers": layer_table_view(layer_tables.get(name)), "loss": loss_curve_view(loss_curves.get(name)),
        })

    by_category = shown.by_category()
    categories = []
    for cat in [c for c in CATEGORIES if c in by_category] + sorted(set(by_category) - set(CATEGORIES)):
        got, out_of = by_category[cat]
        tests_in = [t for t in shown.tests if t.category == cat]
        categories.append({
            "name": cat, "label": CATEGORY_LABELS.get(cat, cat), "score": got, "max_score": out_of,
            "percent": percent(got, out_of), "passed": sum(t.outcome is Outcome.passed for t in tests_in),
            "total": len(tests_in),
        })

    words = " ".join(t.name + " " + t.message + " " + (t.hint or "") for t in shown.tests).lower()
    terms = [{"term": term, "text": text} for term, text in GLOSSARY.items() if term in words]
    counts = outcome_counts(shown.tests)
    return {
        "r": shown,
        "policy": shown.feedback,
        "grader_version": shown.grader_version,
        "percent": percent(shown.score, shown.max_score),
        "counts": counts,
        "mistakes": mistakes,
        "targets": targets,
        "categories": categories,
        "passed_count": counts["passed"],
        "skipped": [views[id(t)] for t in shown.tests if t.outcome is Outcome.skipped],
        "problems": [
            {"file": p.file, "kind": p.kind, "message": clean_text(p.message), "detail": clean_text(p.detail)}
            for p in shown.problems if p.kind not in ("import", "missing") or not shown.mistakes
        ],
        "unimported": sorted({p.file for p in shown.problems if p.file and p.kind in ("import", "missing")}),
        "flags": [{"kind": f.kind, "test": f.test, "detail": clean_text(f.detail)} for f in shown.flags],
        "comparison": comparison_view(_artifact(shown, "comparison")),
        "terms": terms,
        "notebook": notebook_view(shown.notebook),
        "execution_time": f"{shown.execution_time:.1f}",
    }


def render_student(result: SubmissionResult) -> str:
    """The student's report as one self-contained HTML page."""
    return environment().get_template("report_student.html.j2").render(**student_view(result))


def write_student_report(result: SubmissionResult, folder: Path) -> Path:
    """Write ``folder/report.html`` atomically and return its path."""
    path = Path(folder) / REPORT_FILE
    write_atomic(path, render_student(result))
    return path
