"""How fast a class run is, measured against grading one submission alone and against the obvious way.

Run (from the project's root):

    .venv/bin/python bench/class_run.py [-n N] [--assignment ID] [--jobs J] [--class-dir DIR]
    GRADER_COURSES=tests/fixtures .venv/bin/python bench/class_run.py --assignment minicourse

It makes N copies of the assignment's reference solution (each a full-marks
submission) and, in this one invocation, on this machine:

1. grades one copy alone: a fresh ``grader run`` process (start-up included);
   "one alone" below is the median of this run and the N runs of step 3, which
   are each one copy alone too (a shared machine makes single runs noisy);
2. grades the N copies in one ``grader run --jobs J`` (J defaults to the cores);
3. grades the N copies the obvious other way: a fresh ``grader run`` process per
   submission, one after another (what a loop over ``python -m pytest`` costs:
   interpreter, ``import torch`` and a sandbox per student);
4. does 2 and 3 for the demo class in ``--class-dir`` (default: submissions/), if any.

From each run's ``--json`` summary it reads the checks' own time (the sum of the
tests' durations: pytest's test calls, with the student's and the reference's
compute) and each grading process's time and peak memory, and prints:

- per-submission speed-up: (one alone) / (class wall / N);
- time per submission spent outside the checks once started, measured in the
  grading process (job time - checks time), and at run level
  ((class wall - one start-up) x J / N - checks / N);
- efficiency: floor / class wall, where floor = checks / cores + one start-up
  and one start-up = (one alone) - (its checks);
- peak memory (VmHWM) per grading process and per sandbox zygote;
- the obvious way's wall time and how many times slower it is.

The machine may be shared: figures are from one run and noisy; ratios within
one invocation are the comparable part.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.classrun.executors.local import usable_cores  # noqa: E402
from grader.spec import available, find_spec  # noqa: E402


def machine() -> dict:
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "not installed"
    gpus = []
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return {"platform": platform.platform(), "python": platform.python_version(), "cores": usable_cores(),
            "cpu_count": os.cpu_count(), "torch": torch, "gpus": gpus,
            "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists()
            else platform.processor()}


def grader_run(subs: list[Path], out: Path, assignment: str, jobs: int) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "grader.cli", "run", *map(str, subs), "--assignment", assignment, "--out", str(out),
           "--json", "--jobs", str(jobs), "--force"]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"bench: `{' '.join(cmd[:6])} ...` failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return wall, json.loads(proc.stdout)


def one_by_one(subs: list[Path], out: Path, assignment: str) -> list[tuple[float, dict]]:
    return [grader_run([sub], out / f"{i:03d}", assignment, 1) for i, sub in enumerate(subs)]


def graded(summary: dict) -> list[dict]:
    return [s for s in summary["students"] if s["status"] == "graded"]


def figures(alone: list[tuple[float, dict]], batch: tuple[float, dict], cores: int, same_as_alone: bool) -> dict:
    """``alone``: fresh one-submission runs of the reference; the median stands for "one alone"."""
    w1, s1 = sorted(alone, key=lambda run: run[0])[len(alone) // 2]
    wn, sn = batch
    jobs = graded(sn)
    n = len(jobs)
    c1 = sum(s["checks_s"] for s in graded(s1))
    cn = sum(s["checks_s"] for s in jobs)
    startup = w1 - c1
    floor = cn / cores + startup
    per_job_outside = [s["job_s"] - s["checks_s"] for s in jobs]
    return {
        "n": n, "jobs": sn["jobs"], "alone_wall_s": w1, "alone_runs": len(alone),
        "alone_range_s": (min(w for w, _ in alone), max(w for w, _ in alone)), "alone_checks_s": c1,
        "startup_s": startup,
        "class_wall_s": wn, "class_checks_s": cn, "per_submission_s": wn / n, "speedup": w1 / (wn / n),
        "outside_checks_median_s": statistics.median(per_job_outside), "outside_checks_max_s": max(per_job_outside),
        "outside_checks_run_level_s": (wn - startup) * sn["jobs"] / n - cn / n,
        "floor_s": floor, "efficiency": floor / wn,
        "worker_peak_mb": max(s["worker_peak_mb"] or 0 for s in jobs),
        "sandbox_peak_mb": max(s["sandbox_peak_mb"] or 0 for s in jobs),
        "workers": len({s["worker_pid"] for s in jobs}),
        "scores": sorted({(s["score"], s["max_score"]) for s in jobs}),
        "not_graded": len(sn["students"]) - n, "same_as_alone": same_as_alone,
    }


def show(title: str, f: dict, alt_wall: float | None) -> None:
    print(f"\n== {title}: {f['n']} submissions, {f['jobs']} worker(s)")
    rows = [
        ("one submission alone (fresh process)", f"{f['alone_wall_s']:.2f} s",
         f"median of {f['alone_runs']} ({f['alone_range_s'][0]:.1f}-{f['alone_range_s'][1]:.1f} s); checks "
         f"{f['alone_checks_s']:.2f} s, start-up and the rest {f['startup_s']:.2f} s"),
        (f"{f['n']} in one run", f"{f['class_wall_s']:.2f} s", f"{f['per_submission_s']:.2f} s per submission, "
         f"checks {f['class_checks_s']:.2f} s in all"),
        ("per-submission speed-up", f"{f['speedup']:.2f}x", "(one alone) / (one run's wall / N)")
        if f["same_as_alone"] else None,
        ("outside the checks, per submission", f"{f['outside_checks_median_s']:.3f} s",
         f"median job - checks in the grading process (max {f['outside_checks_max_s']:.3f} s); run level "
         f"{f['outside_checks_run_level_s']:.3f} s"),
        ("physical floor", f"{f['floor_s']:.2f} s", "checks / cores + one start-up"),
        ("efficiency", f"{100 * f['efficiency']:.0f}%", "floor / one run's wall"),
        ("peak memory per grading process", f"{f['worker_peak_mb']:.0f} MB",
         f"sandbox zygote {f['sandbox_peak_mb']:.0f} MB (VmHWM)"),
    ]
    if alt_wall is not None:
        rows.append(("the obvious way (fresh process each)", f"{alt_wall:.2f} s",
                     f"{alt_wall / f['class_wall_s']:.2f}x the one run's wall"))
    rows = [r for r in rows if r]
    width = max(len(r[0]) for r in rows)
    for label, value, note in rows:
        print(f"  {label:<{width}}  {value:>9}  {note}")
    print(f"  scores: {', '.join(f'{a:g}/{b:g}' for a, b in f['scores'])}"
          + (f"; NOT graded: {f['not_graded']}" if f["not_graded"] else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=6, help="copies of the reference (default 6)")
    parser.add_argument("--assignment", default="day09", help="assignment id (default day09)")
    parser.add_argument("--jobs", type=int, default=None, help="workers for the class run (default: the cores)")
    parser.add_argument("--class-dir", type=Path, default=None,
                        help="the demo class (default: submissions/ when the assignment is day09)")
    parser.add_argument("--skip-alternative", action="store_true", help="do not time the one-process-each way")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.assignment not in available():
        sys.exit(f"bench: unknown assignment {args.assignment!r}; known: {', '.join(available()) or 'none'} "
                 "(set GRADER_COURSES to use another course folder)")
    spec = find_spec(args.assignment)
    info = machine()
    cores = info["cores"]
    jobs = args.jobs or cores
    print(f"machine: {info['platform']}; {info['cpu']}; {cores} usable cores (of {info['cpu_count']}); "
          f"python {info['python']}; torch {info['torch']}; GPU: {', '.join(info['gpus']) or 'none'}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}"
          + (f"  (GRADER_COURSES={os.environ['GRADER_COURSES']})" if os.environ.get("GRADER_COURSES") else ""))
    work = Path(tempfile.mkdtemp(prefix="bench-class-run-"))
    results: dict = {"machine": info, "assignment": args.assignment, "command": sys.argv}
    try:
        subs = []
        for i in range(1, args.n + 1):
            dest = work / "subs" / f"ref-{i:02d}"
            shutil.copytree(spec.reference, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            subs.append(dest)
        alone = [grader_run(subs[:1], work / "alone", args.assignment, 1)]
        batch = grader_run(subs, work / "class", args.assignment, jobs)
        alt_runs = [] if args.skip_alternative else one_by_one(subs, work / "alt", args.assignment)
        alt = sum(w for w, _ in alt_runs) if alt_runs else None
        alone += alt_runs          # each of the obvious way's runs is one submission alone too
        f = figures(alone, batch, cores, True)
        f["alternative_wall_s"] = alt
        results["reference_copies"] = f
        show(f"{args.n} copies of the reference", f, alt)

        class_dir = args.class_dir or (ROOT / "submissions" if args.assignment == "day09" else None)
        demo = sorted(p for p in class_dir.iterdir() if not p.name.startswith(".")) if class_dir and class_dir.is_dir() else []
        if demo:
            batch = grader_run(demo, work / "demo", args.assignment, jobs)
            alt_runs = [] if args.skip_alternative else one_by_one(demo, work / "demo-alt", args.assignment)
            alt = sum(w for w, _ in alt_runs) if alt_runs else None
            f = figures(alone, batch, cores, False)
            f["alternative_wall_s"] = alt
            results["demo_class"] = f
            show(f"the demo class in {class_dir}", f, alt)
        else:
            print(f"\n== demo class: none ({class_dir or 'no --class-dir for this assignment'})")
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
