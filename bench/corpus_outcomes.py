"""Record what the hidden suite decides on the corpus, the reference, the skeleton and the demo class, and compare two records.

    .venv/bin/python bench/corpus_outcomes.py record OUT.json [--only CASE ...]
    .venv/bin/python bench/corpus_outcomes.py compare BEFORE.json AFTER.json [--subset]

A change that only makes the checks cheaper must leave every decision as it
was. ``record`` grades (on the CPU) the reference, the skeleton, the demo
class's submissions and every corpus case as ``grader audit`` does, and keeps
per test its outcome and score, per case the audit's verdict (caught, named,
full marks) and the causes the suite named. Texts (messages, hints, the
grouping of failures into mistakes) are left out: they may change for other
reasons. ``compare`` prints every difference in outcome or score (with
``--causes`` also in the causes named) and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
ASSIGNMENT = "day09"


def tests_of(graded: Any) -> dict[str, list[Any]]:
    return {f"{t.target}::{t.nodeid}": [t.outcome.value, round(t.score, 6), round(t.max_score, 6), t.cause]
            for t in graded.tests}


def record(out: Path, only: list[str] | None) -> int:
    from grader.authoring.audit import run_audit
    from grader.grading.engine import GradingSession
    from grader.spec import find_spec

    spec = find_spec(ASSIGNMENT)
    data: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                            "graded": {}, "cases": {}}
    started = time.monotonic()
    with GradingSession(spec, gpu=False) as session:
        if not only:
            folders = [("reference", Path(spec.reference)), ("skeleton", Path(spec.skeleton))]
            folders += [(f"submissions/{p.name}", p) for p in sorted((ROOT / "submissions").iterdir()) if p.is_dir()]
            for name, folder in folders:
                t0 = time.monotonic()
                graded = session.grade(folder, student=name.replace("/", "-"))
                data["graded"][name] = {"score": graded.score, "max_score": graded.max_score,
                                        "tests": tests_of(graded),
                                        "flags": sorted(f.kind for f in graded.flags)}
                print(f"{name}: {graded.score:g}/{graded.max_score:g} ({time.monotonic() - t0:.1f} s)",
                      file=sys.stderr, flush=True)
        report = run_audit(spec, CORPUS, only=only, session=session, progress=sys.stderr)
    for r in report.results:
        entry: dict[str, Any] = {"verdict_ok": r.ok, "unavailable": r.unavailable, "error": r.error}
        if r.graded is not None:
            entry.update(score=r.score, max_score=r.max_score, lost=r.lost, named=r.named,
                         caught_by=sorted({f"{f.target}/{f.category}" for f in r.caught_by}),
                         causes=sorted(r.causes), tests=tests_of(r.graded),
                         flags=sorted(f.kind for f in r.graded.flags))
        data["cases"][r.case.label] = entry
    data["seconds"] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"machine: {data['machine']}; {len(data['cases'])} cases and {len(data['graded'])} submissions "
          f"recorded in {data['seconds']:.0f} s -> {out}")
    return 0


# What naming a mistake decides (the catalogue's cause, not the verdict): compared only with --causes.
CAUSE_FIELDS = ("causes", "named", "verdict_ok")


def diff(before: dict[str, Any], after: dict[str, Any], where: str, causes: bool = True) -> list[str]:
    out = []
    for key in sorted(set(before) | set(after)):
        if not causes and key in CAUSE_FIELDS:
            continue
        if key not in after:
            out.append(f"{where}: {key} only before")
        elif key not in before:
            out.append(f"{where}: {key} only after")
        elif key == "tests":
            out += diff(before[key], after[key], f"{where} tests", causes)
        elif where.endswith(" tests") and not causes and before[key][:3] == after[key][:3]:
            continue  # outcome, score and maximum agree; only the cause differs
        elif before[key] != after[key]:
            out.append(f"{where}: {key}: {before[key]!r} -> {after[key]!r}")
    return out


def compare(before_path: Path, after_path: Path, subset: bool = False, causes: bool = False) -> int:
    before = json.loads(before_path.read_text(encoding="utf-8"))
    after = json.loads(after_path.read_text(encoding="utf-8"))
    lines = []
    for section in ("graded", "cases"):
        b, a = before[section], after[section]
        for name in sorted(set(b) | set(a)):
            if subset and name not in a:
                continue
            if name not in a or name not in b:
                lines.append(f"{name}: only {'before' if name in b else 'after'}")
                continue
            lines += diff(b[name], a[name], name, causes)
    for line in lines:
        print(line)
    n = len(after["cases"]) + len(after["graded"]) if subset else len(before["cases"]) + len(before["graded"])
    print(f"{n} gradings compared: {'no difference' if not lines else f'{len(lines)} difference(s)'} "
          f"(recorded in {before.get('seconds', 0):.0f} s before, {after.get('seconds', 0):.0f} s after)")
    return 1 if lines else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--only", nargs="*", help="only these corpus cases (and no submissions)")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    cmp_.add_argument("--subset", action="store_true", help="compare only what AFTER recorded (a run with --only)")
    cmp_.add_argument("--causes", action="store_true",
                      help="also compare the causes named (the catalogue's work, which other changes may move)")
    args = parser.parse_args(argv)
    if args.command == "record":
        return record(args.out, args.only)
    return compare(args.before, args.after, args.subset, args.causes)


if __name__ == "__main__":
    sys.exit(main())
