"""Where the time goes: one submission, a class, the start-up, and every test and probe, against a yardstick.

Run (from the project's root):

    .venv/bin/python bench/where_time_goes.py [--class-n 8] [--alone 3] [--json FILE]

In this one invocation, on this machine, it measures:

1. **the yardstick** (median of 3, run before, between and after the
   end-to-end runs below): a fresh process that imports torch and
   torchvision, sets one thread, and runs 20 no-grad forward passes of
   ``torchvision.models.resnet18(num_classes=10)`` in eval mode on a
   (8, 3, 32, 32) float32 batch. It moves with the machine's speed as grading
   does, so every other figure is also given as a ratio to it;
2. **one submission alone**: ``grader run submissions/alice -o TMP --force`` in a
   fresh process, end to end (the first run, with an empty reference cache, is
   shown apart; the figure is the median of the ``--alone`` runs after it), its
   suite split into as many lanes as ``grader run`` gives a lone submission here
   (said in the output; ``GRADER_LANES=1`` for one); target: at most 2.0x the
   yardstick;
3. **a class run**: ``--class-n`` copies of the reference in one ``grader run``
   (``bench/class_run.py``'s way, ``--jobs`` = the usable cores); the time per
   submission; target: at most 0.6x the yardstick. Beside it, the run's floor:
   its checks per submission divided by its workers (every worker always busy,
   no start-up at all), which says whether the target can be reached by
   anything but cheaper checks;
4. **the start-up split**, in a fresh process, one stage after another: the
   interpreter, ``import torch``, ``torch._dynamo``, ``import torchvision``, the
   grader's modules (each stage pays only for what earlier ones did not import),
   the assignment's spec, loading the reference (and its cached results),
   collecting the hidden suite, starting the sandbox zygote; then the
   reference's own probes (what its first grading in a process computes);
5. **per test and per probe**, in that same process (one torch thread, as a
   class run's worker has): the reference graded twice (its probes computed,
   then memoised), then each submission of the demo class (``submissions/*``);
   the tests that cost most, the time per category, and the probes that cost
   most on each side (the student's: a request to the sandbox, round trip; the
   reference's: computed in the trusted process).

The reference's results are cached in a folder of the bench's own
(``GRADER_CACHE_DIR``), empty at first: the first run of one submission alone
computes them (shown apart) and every later run (the median of one alone, the
class run, the start-up split) finds them there, as every run after a suite
version's first does; nothing is inherited from earlier invocations. The machine may be shared: only ratios from one invocation
are comparable.
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
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

YARDSTICK = """
import time
t0 = time.perf_counter()
import torch, torchvision
torch.set_num_threads(1)
model = torchvision.models.resnet18(num_classes=10).eval()
x = torch.randn(8, 3, 32, 32)
with torch.no_grad():
    for _ in range(20):
        model(x)
"""


def machine() -> dict:
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "not installed"
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    gpus = []
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "cpu": cpu, "cores": len(os.sched_getaffinity(0)),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch, "gpus": gpus,
            "load_at_start": load}


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    return time.perf_counter() - started, proc


def must(proc: subprocess.CompletedProcess, what: str, ok: tuple[int, ...] = (0,)) -> None:
    if proc.returncode not in ok:
        sys.exit(f"bench: {what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")


def yardstick(runs: int = 3) -> list[float]:
    out = []
    for _ in range(runs):
        wall, proc = timed([sys.executable, "-c", YARDSTICK])
        must(proc, "the yardstick")
        out.append(wall)
    return out


def grader_env(cache: Path) -> dict:
    return {**os.environ, "GRADER_CACHE_DIR": str(cache)}


def grader_run(subs: list[Path], out: Path, env: dict, jobs: int | None = None) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "grader", "run", *map(str, subs), "-o", str(out), "--force", "--json"]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    wall, proc = timed(cmd, env)
    must(proc, f"grader run {' '.join(map(str, subs))[:80]}", (0, 1))
    return wall, json.loads(proc.stdout)


# ----------------------------------------------------------------- the start-up split (a child process)

def startup_child(out_file: Path, assignment: str, demo: list[str]) -> None:
    """Runs in a fresh process: each stage's time, then every test and probe of the graded submissions."""
    stages: list[tuple[str, float]] = []
    mark = [time.perf_counter()]

    def stage(name: str) -> None:
        now = time.perf_counter()
        stages.append((name, now - mark[0]))
        mark[0] = now

    import grader.cli  # noqa: F401
    import grader.commands.run  # noqa: F401

    stage("grader modules: the CLI and `run`")
    import grader.grading.engine  # noqa: F401

    stage("grader modules: engine (pytest, plugin, test-author API)")
    import grader.classrun.run  # noqa: F401

    stage("grader modules: class runs (ingest, gradebook, keys)")
    import grader.report.html  # noqa: F401

    stage("grader modules: report (jinja2, templates)")
    from grader.grading.engine import GradingSession, run_suite
    from grader.grading.plugin import GradingPlugin, SuiteError
    from grader.spec import find_spec
    from grader.testing import ReferenceImplementation
    from grader.grading.client import WorkerClient

    spec = find_spec(assignment)
    stage("assignment spec")
    session = GradingSession(spec, threads=1)
    stage("grading session: reference results (from the cache if there) or the reference loaded")
    try:  # every test collected, none selected: pytest says "no tests ran" (exit 5), which is what is wanted here
        run_suite(spec, GradingPlugin(spec, None, session.reference, deadline=time.monotonic() + 3600, targets=set()))
    except SuiteError as e:
        if "pytest exit 5" not in str(e):
            raise
    stage("hidden suite collected")
    # torch: what the sandbox's zygote imports; the grading process only for a reference result not cached
    torch_loaded_before = "torch" in sys.modules
    import torch

    stage("import torch (in the zygote; in the grading process only for a reference result not cached)")
    import torch._dynamo  # noqa: F401

    stage("import torch._dynamo (in the zygote: optimizers and torchvision use it)")
    import torchvision  # noqa: F401

    stage("import torchvision (in the zygote; the reference's)")
    from grader.worker import probes as probe_library

    torch.set_num_threads(1)
    session.sandbox  # noqa: B018 - start the zygote
    stage("sandbox zygote ready")

    # Per probe: the reference's side (every probe function the trusted process runs, the catalogue's
    # wrong versions included) and the student's side (a request to the sandbox, round trip).
    ref_probes: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    student_probes: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    ref_total = [0.0]

    def wrap_reference(name: str, fn):  # noqa: ANN001, ANN202
        def run(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                dt = time.perf_counter() - t
                ref_probes[name][0] += 1
                ref_probes[name][1] += dt
                ref_total[0] += dt
        return run

    for name, fn in list(probe_library.PROBES.items()):
        probe_library.PROBES[name] = wrap_reference(name, fn)
    original_probe = WorkerClient.probe

    def student_probe(self, probe, file, target, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        t = time.perf_counter()
        try:
            return original_probe(self, probe, file, target, *a, **k)
        finally:
            entry = student_probes[f"{target}.{probe}"]
            entry[0] += 1
            entry[1] += time.perf_counter() - t

    WorkerClient.probe = student_probe
    gradings = []
    runs = [("reference", spec.reference), ("reference, again", spec.reference)] + [(Path(d).name, Path(d)) for d in demo]
    for label, folder in runs:
        before = {k: tuple(v) for k, v in ref_probes.items()}
        before_students = {k: tuple(v) for k, v in student_probes.items()}
        ref_before = ref_total[0]
        t = time.perf_counter()
        result = session.grade(folder, label)
        wall = time.perf_counter() - t
        if label == "reference":
            stages.append(("reference probes computed (first grading in a process)", ref_total[0] - ref_before))
        gradings.append({
            "label": label, "wall_s": wall, "score": result.score, "max_score": result.max_score,
            "checks_s": sum(x.duration_s for x in result.tests), "reference_s": ref_total[0] - ref_before,
            "tests": [{"nodeid": x.nodeid, "target": x.target, "category": x.category, "s": x.duration_s,
                       "outcome": x.outcome.value} for x in result.tests],
            "reference_probes": {k: [v[0] - before.get(k, (0, 0.0))[0], v[1] - before.get(k, (0, 0.0))[1]]
                                 for k, v in ref_probes.items() if v[0] != before.get(k, (0, 0.0))[0]},
            "student_probes": {k: [v[0] - before_students.get(k, (0, 0.0))[0], v[1] - before_students.get(k, (0, 0.0))[1]]
                               for k, v in student_probes.items() if v[0] != before_students.get(k, (0, 0.0))[0]},
        })
    session.close()
    out_file.write_text(json.dumps({"stages": stages, "gradings": gradings, "torch_before_zygote": torch_loaded_before}))


def interpreter_start(runs: int = 3) -> float:
    walls = []
    for _ in range(runs):
        wall, proc = timed([sys.executable, "-c", "pass"])
        must(proc, "python -c pass")
        walls.append(wall)
    return statistics.median(walls)


# ----------------------------------------------------------------- printing

def table(rows: list[tuple[str, ...]], indent: str = "  ") -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        print(indent + "  ".join(cells).rstrip())


def ratio(seconds: float, yard: float) -> str:
    return f"{seconds / yard:.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="day09")
    parser.add_argument("--student", type=Path, default=ROOT / "submissions" / "alice",
                        help="the submission graded alone (default submissions/alice)")
    parser.add_argument("--alone", type=int, default=3, help="runs of one submission alone after the first (median)")
    parser.add_argument("--class-n", type=int, default=8, help="copies of the reference in the class run (default 8)")
    parser.add_argument("--class-dir", type=Path, default=ROOT / "submissions", help="the demo class")
    parser.add_argument("--top", type=int, default=15, help="rows in each 'most costly' table")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    parser.add_argument("--_child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_demo", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        startup_child(args._child, args.assignment, args._demo)
        return 0

    info = machine()
    print(f"machine: {info['platform']}; {info['cpu']}; {info['cores']} usable cores (of {info['cpu_count']}); "
          f"python {info['python']}; torch {info['torch']}; GPU: {', '.join(info['gpus']) or 'none'}; "
          f"load average {info['load_at_start']:.2f} at start")
    work = Path(tempfile.mkdtemp(prefix="bench-where-"))
    figures: dict = {"machine": info, "command": sys.argv}
    try:
        # three runs of the yardstick, spread over the invocation (before, between and after the end-to-end
        # runs), so that a machine whose load changes meanwhile weighs on both sides of the ratios alike
        yard_runs = yardstick(1)

        # -- one submission alone, end to end
        cache = work / "cache-alone"
        env = grader_env(cache)
        first, _ = grader_run([args.student], work / "alone-0", env)
        alone = [grader_run([args.student], work / f"alone-{i + 1}", env) for i in range(args.alone)]
        alone_walls = [w for w, _ in alone]
        alone_med = statistics.median(alone_walls)
        alone_checks = statistics.median(sum(s["checks_s"] for s in summ["students"]) for _, summ in alone)
        # with lanes the checks run side by side: the grading's own wall time is what the student waits for
        alone_grading = statistics.median(sum(s["execution_time"] for s in summ["students"]) for _, summ in alone)
        from grader.classrun.executors.local import lanes_for_one, threads_per_worker

        alone_lanes = lanes_for_one(threads_per_worker(), gpu=False)
        figures["alone"] = {"first_s": first, "walls_s": alone_walls, "checks_s": alone_checks,
                            "grading_s": alone_grading, "lanes": alone_lanes}

        yard_runs += yardstick(1)

        # -- a class run of N copies of the reference
        from_ref = ROOT / "reference" / args.assignment
        subs = []
        for i in range(1, args.class_n + 1):
            dest = work / "copies" / f"ref-{i:02d}"
            shutil.copytree(from_ref, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            subs.append(dest)
        # the reference's results as every run after a suite version's first finds them: in the cache
        class_wall, class_summary = grader_run(subs, work / "class", env, info["cores"])
        graded = [s for s in class_summary["students"] if s["status"] == "graded"]
        class_checks = sum(s["checks_s"] for s in graded)
        per_sub = class_wall / args.class_n
        figures["class"] = {"n": args.class_n, "jobs": class_summary.get("jobs"), "wall_s": class_wall,
                            "checks_s": class_checks, "graded": len(graded)}

        yard_runs += yardstick(1)
        yard = statistics.median(yard_runs)
        figures["yardstick_s"] = yard_runs

        # -- the start-up split, per test and per probe (one fresh process)
        interp = interpreter_start()
        demo = sorted(str(p) for p in args.class_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if args.class_dir.is_dir() else []
        child_out = work / "child.json"
        child_cmd = [sys.executable, str(Path(__file__).resolve()), "--assignment", args.assignment,
                     "--_child", str(child_out)] + [f"--_demo={d}" for d in demo]
        child_wall, proc = timed(child_cmd, env)
        must(proc, "the start-up and per-test process")
        child = json.loads(child_out.read_text())
        figures["startup"] = {"interpreter_s": interp, "stages": child["stages"],
                              "grader_imported_torch": child["torch_before_zygote"]}
        figures["gradings"] = child["gradings"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # ------------------------------------------------------------- report
    class_floor = class_checks / args.class_n / max(1, figures["class"]["jobs"] or info["cores"])
    print(f"yardstick (median of 3 fresh processes, before, between and after the end-to-end runs: import torch + "
          f"torchvision, 20 resnet18 forwards): {yard:.2f} s  ({', '.join(f'{w:.2f}' for w in yard_runs)})")
    print("\n== The issue's figures (ratios to the yardstick)")
    table([
        ("one submission alone, end to end", f"{alone_med:.2f} s", ratio(alone_med, yard), "target <= 2.0x",
         f"median of {len(alone_walls)} ({', '.join(f'{w:.1f}' for w in alone_walls)}); grading {alone_grading:.2f} s "
         f"(checks {alone_checks:.2f} s, summed over its {alone_lanes} lane(s)), "
         f"start-up and the rest {alone_med - alone_grading:.2f} s; "
         f"first run, empty cache: {first:.2f} s = {ratio(first, yard)}"),
        (f"class run of {args.class_n}, per submission", f"{per_sub:.2f} s", ratio(per_sub, yard), "target <= 0.6x",
         f"{class_wall:.1f} s in all with {figures['class']['jobs']} workers; checks {class_checks:.1f} s "
         f"({class_checks / args.class_n:.2f} s per submission); {len(graded)}/{args.class_n} graded"),
        ("  its floor: checks per submission / workers", f"{class_floor:.2f} s", ratio(class_floor, yard), "",
         "what the class run's checks cost with every worker always busy, before any start-up; "
         + ("the target is below it" if class_floor / yard > 0.6 else "the target is above it")),
    ])

    stages = [("interpreter (python -c pass, median of 3)", interp)] + [tuple(s) for s in child["stages"]]
    total = sum(s for _, s in stages)
    print(f"\n== Start-up split (fresh process, stages one after another; {total:.2f} s in all), most costly first; "
          f"the grader's own stages imported torch: {'yes' if child['torch_before_zygote'] else 'no'}")
    table([(name, f"{s:.2f} s", f"{100 * s / total:.0f}%", ratio(s, yard)) for name, s in
           sorted(stages, key=lambda kv: -kv[1])])

    gradings = child["gradings"]
    print("\n== Gradings in that process (one torch thread): wall, checks (tests' own time), reference's side")
    table([(g["label"], f"{g['wall_s']:.2f} s", f"checks {g['checks_s']:.2f} s", f"reference {g['reference_s']:.2f} s",
            f"{g['score']:g}/{g['max_score']:g}") for g in gradings])

    for g in gradings:
        if g["label"] == "reference, again":
            by_cat: dict[str, float] = defaultdict(float)
            for t in g["tests"]:
                by_cat[t["category"]] += t["s"]
            print(f"\n== Reference (memoised, the per-submission cost in a class run): time per category, "
                  f"{g['checks_s']:.2f} s in all")
            table([(c, f"{s:.2f} s", f"{100 * s / max(g['checks_s'], 1e-9):.0f}%")
                   for c, s in sorted(by_cat.items(), key=lambda kv: -kv[1])])
            print(f"\n== Reference (memoised): the {args.top} most costly of {len(g['tests'])} tests")
            table([(f"{t['target']} {t['nodeid']}", f"{t['s']:.3f} s", t["category"])
                   for t in sorted(g["tests"], key=lambda t: -t["s"])[:args.top]])

    def probe_rows(totals: dict[str, list[float]]) -> list[tuple[str, ...]]:
        return [(name, f"{s:.2f} s", f"x{int(n)}", f"{1000 * s / n:.0f} ms each")
                for name, (n, s) in sorted(totals.items(), key=lambda kv: -kv[1][1])[:args.top]]

    reference_side: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for g in gradings:
        for k, (n, s) in g["reference_probes"].items():
            reference_side[k][0] += n
            reference_side[k][1] += s
    print(f"\n== Reference's side, every grading in that process: the {args.top} most costly probes computed in the "
          f"trusted process (not found in the memo or the cache; the catalogue's wrong versions included), "
          f"{sum(g['reference_s'] for g in gradings):.2f} s in all")
    table(probe_rows(reference_side))
    student_side: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    demo_tests: dict[str, float] = defaultdict(float)
    for g in gradings[1:]:
        for k, (n, s) in g["student_probes"].items():
            student_side[k][0] += n
            student_side[k][1] += s
    print(f"\n== Student's side (requests to the sandbox, round trip), the reference and the demo class "
          f"({', '.join(g['label'] for g in gradings[2:]) or 'none'}): the {args.top} most costly target.probe")
    table(probe_rows(student_side))
    for g in gradings[2:]:
        for t in g["tests"]:
            demo_tests[f"{g['label']}: {t['target']} {t['nodeid']} ({t['outcome']})"] += t["s"]
    if demo_tests:
        print(f"\n== Demo class: the {args.top} most costly tests")
        table([(name, f"{s:.3f} s") for name, s in sorted(demo_tests.items(), key=lambda kv: -kv[1])[:args.top]])
    figures["summary"] = {"yardstick_s": yard, "alone_s": alone_med, "alone_ratio": alone_med / yard,
                          "class_per_submission_s": per_sub, "class_ratio": per_sub / yard,
                          "class_floor_s": class_floor, "class_floor_ratio": class_floor / yard,
                          "alone_first_s": first, "startup_total_s": total}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
