"""The sandbox on a CUDA machine: does a worker use the GPU, and what bounds it there?

Starts a sandbox with ``gpu=True``; imports the reference's files in a fresh
worker (timing each); then a worker that: reports what it sees
(devices, /sys, network interfaces, its uid and processes) and runs a CUDA
matrix product; allocates host memory until something stops it (the memory
cgroup should, and the result flags ``memory``); allocates GPU memory until
CUDA refuses (GPU memory is not bounded by the cgroup); and, in a fresh
worker, checks that CUDA works again and the GPU memory came back.

Needs only torch and numpy: ``PYTHONPATH=. python3 bench/sandbox_gpu_check.py``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.grading.client import SubmissionError, WorkerClient  # noqa: E402
from grader.grading.sandbox import Sandbox, SandboxConfig  # noqa: E402
from grader.grading.view import bwrap_path  # noqa: E402

GPU_FILE = '''
import os, time

def info():
    import torch
    t = time.perf_counter()
    ok = torch.cuda.is_available()
    out = {"cuda": ok, "uid": os.getuid(),
           "dev": sorted(os.listdir("/dev")),
           "net": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None,
           "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
    if ok:
        x = torch.randn(2048, 2048, device="cuda")
        out["matmul"] = float((x @ x).abs().sum().item())
        out["name"] = torch.cuda.get_device_name(0)
        out["free_gb"] = round(torch.cuda.mem_get_info()[0] / 2**30, 1)
    out["first_cuda_s"] = round(time.perf_counter() - t, 3)
    return out

def host_hog(limit_gb):
    hoard = []
    while len(hoard) < limit_gb * 4:
        hoard.append(b"\\x01" * (256 << 20))
    return f"not stopped at {limit_gb} GB"

def gpu_hog():
    import torch
    hoard = []
    try:
        while len(hoard) < 400:
            hoard.append(torch.empty(1 << 30, dtype=torch.uint8, device="cuda"))
    except torch.OutOfMemoryError:
        pass
    return len(hoard)
'''


def sh(cmd: str) -> str:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()


def call(client: WorkerClient, target: str, *args, timeout: float = 120):  # noqa: ANN001, ANN201
    return client.probe("call_function", "gpu.py", target, "function", list(args), {}, {}, timeout=timeout)["result"]["value"]


def main() -> None:
    print("machine:", platform.platform(), os.cpu_count(), "cores; python", platform.python_version())
    print("gpu:", sh("nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader"))
    print("bwrap:", bwrap_path(), sh("bwrap --version"), "| cgroup fs:", sh("stat -fc %T /sys/fs/cgroup"),
          "| uid", os.geteuid())
    print("own cgroups:", Path("/proc/self/cgroup").read_text().replace("\n", " ; "))
    t = time.perf_counter()
    sandbox = Sandbox(SandboxConfig(gpu=True, memory_mb=4096, tmp_mb=64, max_processes=64))
    print(f"start-up {time.perf_counter() - t:.2f} s; isolation: {sandbox.isolation}")
    try:
        reference = Path(__file__).resolve().parents[1] / "reference" / "day09"
        files = {p.name: p.read_bytes() for p in sorted(reference.glob("*.py"))}
        first = WorkerClient(sandbox, files)
        for name in files:
            t = time.perf_counter()
            try:
                first.import_file(name)
                print(f"import {name}: {time.perf_counter() - t:.2f} s")
            except SubmissionError as e:
                print(f"import {name}: {e.kind}: {e.message} ({time.perf_counter() - t:.2f} s)")
        first.close()
        print("events of the first worker:", [(e.kind, e.detail) for e in first.events])
        client = WorkerClient(sandbox, {"gpu.py": GPU_FILE.encode()})
        t = time.perf_counter()
        print("worker sees:", call(client, "info"), f"({time.perf_counter() - t:.2f} s with the spawn)")
        t = time.perf_counter()
        try:
            print("host hog:", call(client, "host_hog", 12, timeout=120))
        except SubmissionError as e:
            print(f"host hog stopped after {time.perf_counter() - t:.1f} s: {e.kind}: {e.message}")
        t = time.perf_counter()
        try:
            print(f"gpu hog: {call(client, 'gpu_hog')} GiB allocated before CUDA refused "
                  f"({time.perf_counter() - t:.1f} s)")
        except SubmissionError as e:
            print(f"gpu hog: {e.kind}: {e.message}")
        client.close()
        print("events:", [(e.kind, e.detail) for e in client.events])
        print("left in the cgroup after close:", sandbox.leftover_processes())
        fresh = WorkerClient(sandbox, {"gpu.py": GPU_FILE.encode()})
        print("fresh worker:", {k: v for k, v in call(fresh, "info").items() if k not in ("dev",)})
        fresh.close()
    finally:
        sandbox.close()


if __name__ == "__main__":
    main()
