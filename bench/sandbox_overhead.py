"""What the sandbox costs: fresh namespaces per worker, one shared bubblewrap sandbox, and the bare fallback.

The modes: ``bubblewrap`` (the default: one bubblewrap sandbox per grading
session, and fresh user, mount, IPC, PID and network namespaces for every
worker), ``shared`` (the same sandbox, its workers sharing its namespaces and
private folders, wiped between submissions: how it was before) and
``fallback`` (no bubblewrap, GRADER_NO_BWRAP=1).

For each mode it measures, on the minicourse:

- start-up, paid once per grading session: bubblewrap (when used), the zygote's
  ``import torch``, the cgroups;
- spawn, paid once per submission (and after every timeout or crash): fork a
  worker, write the files, install the seccomp filter and the monkeypatch
  guard, import the student's module; and the kill-and-wipe that ends it;
- one request: a trivial probe's round trip, and a keyed forward of the
  minicourse's block;
- a whole submission: ``GradingSession.grade`` of the reference.

Run: ``.venv/bin/python bench/sandbox_overhead.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.grading.client import WorkerClient  # noqa: E402
from grader.grading.engine import GradingSession  # noqa: E402
from grader.grading.sandbox import Sandbox, SandboxConfig  # noqa: E402
from grader.grading.view import bwrap_path  # noqa: E402
from grader.spec import load_spec  # noqa: E402

MINI = ROOT / "tests" / "fixtures" / "minicourse"


def machine() -> str:
    import torch

    bwrap = "absent"
    if bwrap_path():
        bwrap = subprocess.run([bwrap_path(), "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{platform.platform()} | {platform.machine()} | {os.cpu_count()} cores | Python {platform.python_version()} "
            f"| torch {torch.__version__} | {bwrap} | uid {os.geteuid()}")


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f} ms (min {min(samples) * 1000:.1f}, n={len(samples)})"


def use(mode: str) -> None:
    if mode == "fallback":
        os.environ["GRADER_NO_BWRAP"] = "1"
    else:
        os.environ.pop("GRADER_NO_BWRAP", None)


def config_for(spec, mode: str = "bubblewrap") -> SandboxConfig:  # noqa: ANN001
    return SandboxConfig(tmp_mb=spec.limits.tmp_mb, memory_mb=spec.limits.memory_mb,
                         max_processes=spec.limits.max_processes, output_bytes=spec.limits.output_bytes,
                         namespaces=mode != "shared")


def startups(modes: list[str], rounds: int) -> dict[str, list[float]]:
    """Start-up times, the modes taking turns so that a busy moment does not land on one of them."""
    out: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(rounds):
        for mode in modes:
            use(mode)
            t = time.perf_counter()
            s = Sandbox(config_for(load_spec(MINI), mode))
            out[mode].append(time.perf_counter() - t)
            s.close()
    return out


def measure(mode: str, repeats: int) -> dict[str, list[float]]:
    use(mode)
    spec = load_spec(MINI)
    files = {"blocks.py": (spec.reference / "blocks.py").read_bytes()}
    config = config_for(spec, mode)
    out: dict[str, list[float]] = {k: [] for k in ("spawn+import", "kill+wipe", "request", "forward", "grade")}
    with Sandbox(config) as sandbox:
        out["isolation"] = sandbox.isolation  # type: ignore[assignment]
        for _ in range(repeats):
            client = WorkerClient(sandbox, files)
            t = time.perf_counter()
            client.import_file("blocks.py")
            out["spawn+import"].append(time.perf_counter() - t)
            for _ in range(20):
                t = time.perf_counter()
                client.probe("call_function", "blocks.py", "double", "function", [3], {}, {}, timeout=10)
                out["request"].append(time.perf_counter() - t)
            for _ in range(3):
                t = time.perf_counter()
                client.probe("keyed_forward", "blocks.py", "SkipBlock", "class", [4], {}, {"input_shape": [2, 4, 5, 5]},
                             timeout=10)
                out["forward"].append(time.perf_counter() - t)
            t = time.perf_counter()
            client.close()
            out["kill+wipe"].append(time.perf_counter() - t)
    with GradingSession(spec) as session:
        session.sandbox_config.namespaces = mode != "shared"
        session.grade(spec.reference)  # warm the reference's memo and the zygote
        for _ in range(max(3, repeats // 2)):
            t = time.perf_counter()
            result = session.grade(spec.reference)
            out["grade"].append(time.perf_counter() - t)
            assert result.score == result.max_score
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    modes = ["bubblewrap", "shared", "fallback"] if bwrap_path() else ["fallback"]
    started = startups(modes, max(3, args.repeats // 3))
    results = {mode: {"startup": started[mode], **measure(mode, args.repeats)} for mode in modes}
    for mode, out in results.items():
        print(f"\n{mode}: {out.pop('isolation')}")
        for key, samples in out.items():
            print(f"  {key:13s} {ms(samples)}")
    for other in ("shared", "fallback"):
        if "bubblewrap" in results and other in results:
            b, f = results["bubblewrap"], results[other]
            print(f"\nbubblewrap (fresh namespaces per worker) minus {other} (medians):")
            for key in [k for k in b if k != "isolation"]:
                print(f"  {key:13s} {(statistics.median(b[key]) - statistics.median(f[key])) * 1000:+8.1f} ms")


if __name__ == "__main__":
    main()
