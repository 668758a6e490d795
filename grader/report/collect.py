"""Read every graded submission under an output folder, without crashing on bad ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from grader import results
from grader.results import SubmissionResult


@dataclass(frozen=True)
class Graded:
    folder: str  # the folder's name under the output folder (links point here)
    result: SubmissionResult


@dataclass(frozen=True)
class Unreadable:
    folder: str
    reason: str  # one line


@dataclass
class Collection:
    out_dir: Path
    graded: list[Graded] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.graded and not self.unreadable


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"not a valid {results.FULL_RESULTS_FILE}: {where + ': ' if where else ''}{first.get('msg', exc)}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} at line {exc.lineno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def collect(out_dir: Path) -> Collection:
    """Every ``out_dir/*/grading.json``, sorted by folder name; folders without one are ignored."""
    out_dir = Path(out_dir)
    found = Collection(out_dir)
    for sub in sorted(p for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        path = sub / results.FULL_RESULTS_FILE
        if not path.is_file():
            continue
        try:
            found.graded.append(Graded(sub.name, results.load(sub)))
        except (ValidationError, ValueError, OSError) as exc:
            found.unreadable.append(Unreadable(sub.name, _reason(exc)))
    return found
