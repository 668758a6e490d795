"""Keeping what a submission can make the grader store small, whatever the submission returns.

Artifacts (layer tables, loss curves) and per-test data are built from worker
replies, so their size is the submission's choice: a module with 15,000 layers
gave a 7.8 MB grading.json and a 4.6 MB report. ``bounded`` keeps at most
``MAX_ITEMS`` entries of any list or mapping and ``MAX_TEXT`` characters of any
string, and lists what it cut, so reports and results stay small.
"""

from __future__ import annotations

from typing import Any

MAX_ITEMS = 300
MAX_TEXT = 4000
MAX_DEPTH = 12


def bounded(value: Any, cut: list[str] | None = None, where: str = "", depth: int = 0) -> Any:
    """A copy of ``value`` within the limits; the paths of what was shortened are appended to ``cut``."""
    cut = cut if cut is not None else []
    if depth > MAX_DEPTH:
        cut.append(f"{where or '.'} (nested too deeply)")
        return None
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            cut.append(f"{where or '.'} ({len(value):,} characters)")
            return value[:MAX_TEXT]
        return value
    if isinstance(value, dict):
        items = list(value.items())
        if len(items) > MAX_ITEMS:
            cut.append(f"{where or '.'} ({len(items):,} entries)")
        return {k: bounded(v, cut, f"{where}.{k}", depth + 1) for k, v in items[:MAX_ITEMS]}
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            cut.append(f"{where or '.'} ({len(value):,} items)")
        return [bounded(v, cut, f"{where}[{i}]", depth + 1) for i, v in enumerate(value[:MAX_ITEMS])]
    return value
