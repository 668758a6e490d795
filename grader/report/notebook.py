"""The student report's notebook section: what was taken from each cell, what was left out, and why."""

from __future__ import annotations

from typing import Any

from grader.intake.notebook.model import NotebookReport

# icon, css class of each cell status: the word is printed too
CELL_STYLE = {"taken": ("✓", "passed"), "partly taken": ("◐", "skipped"), "left out": ("–", "skipped")}


def notebook_view(report: NotebookReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    several = len(report.notebooks) > 1
    cells = []
    for c in report.cells:
        icon, cls = CELL_STYLE[c.status]
        cells.append({
            "label": f"{c.notebook}, cell {c.cell}" if several else f"Cell {c.cell}",
            "anchor": f"nb-{len(cells) + 1}",
            "preview": c.preview,
            "status": c.status, "icon": icon, "cls": cls,
            "taken": [{"name": t.name, "files": ", ".join(t.files)} for t in c.taken],
            "left_out": [{"lines": x.lines, "code": x.code, "reason": x.reason,
                          "where": f"line {x.lines}" if "-" not in x.lines else f"lines {x.lines}"}
                         for x in c.left_out],
        })
    with_left_out = [c for c in cells if c["left_out"]]
    return {
        "notebooks": report.notebooks,
        "written": report.written,
        "kept": report.kept,
        "notes": report.notes,
        "with_left_out": with_left_out,
        "taken_whole": [c for c in cells if not c["left_out"]],
        "counts": {s: sum(c["status"] == s for c in cells) for s in CELL_STYLE},
    }
