"""The sandbox itself: what a worker can see, write, reach and start, and what it leaves behind."""

from __future__ import annotations

import inspect
import os
import signal
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from grader.grading.client import SubmissionError, WorkerClient
from grader.grading.sandbox import Sandbox, SandboxConfig
from grader.grading.view import _bwrap_works, bwrap_path
from grader.worker import zygote

ROOT = Path(__file__).resolve().parents[1]
needs_bwrap = pytest.mark.skipif(not (bwrap_path() and _bwrap_works()), reason="needs a working bubblewrap")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")

INSPECT = '''
import os, socket, sys

def run(paths, writable):
    seen = {p: os.path.exists(p) for p in paths}
    wrote = {}
    for folder in writable:
        try:
            with open(os.path.join(folder, "probe-write"), "w") as f:
                f.write("x")
            st = os.statvfs(folder)
            wrote[folder] = st.f_blocks * st.f_frsize
        except OSError as e:
            wrote[folder] = e.strerror
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    try:
        import grader  # noqa: F401
        grader_importable = True
    except ImportError:
        grader_importable = False
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        inet = "allowed"
    except OSError as e:
        inet = type(e).__name__
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
    return {"seen": seen, "wrote": wrote, "root": sorted(os.listdir("/")), "sys_path": sys.path,
            "uid": os.getuid(), "nnp": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
            "capeff": status["CapEff"].strip(), "grader": grader_importable, "inet": inet,
            "interfaces": [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]],
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}


def kill_parent():
    import signal
    out = {"ppid": os.getppid()}
    for name, target in (("parent", os.getppid()), ("all", -1), ("init", 1)):
        try:
            os.kill(target, signal.SIGKILL)
            out[name] = "sent"
        except OSError as e:
            out[name] = type(e).__name__
    try:
        open(f"/proc/{os.getppid()}/mem", "rb").read(1)
        out["mem"] = "read"
    except OSError as e:
        out["mem"] = type(e).__name__
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    out["libc"] = libc.kill(os.getppid(), 0)
    out["ptrace"] = libc.ptrace(16, os.getppid(), 0, 0)  # PTRACE_ATTACH
    return out


def fork_many(n):
    import time
    started = refused = 0
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError:
            refused += 1
            continue
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        started += 1
    return {"started": started, "refused": refused}


def daemonize():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep", "600"])
        os._exit(0)
    return os.getpid()


def pids_here():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


def die():
    os._exit(3)


def segfault():
    import ctypes
    ctypes.string_at(0)


def frozen_objects():
    import gc
    return gc.get_freeze_count()
'''


def call(client: WorkerClient, target: str, *args: Any, timeout: float = 20) -> Any:
    return client.probe("call_function", "spy.py", target, "function", list(args), {}, {}, timeout=timeout)["result"]["value"]


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(tmp_mb=16, memory_mb=512, max_processes=16, output_bytes=2000)) as s:
        yield s


@pytest.fixture
def client(sandbox):
    c = WorkerClient(sandbox, {"spy.py": INSPECT.encode()})
    yield c
    c.close()


# --------------------------------------------------------------------------- the view

@needs_bwrap
def test_the_zygote_names_its_probes(sandbox: Sandbox) -> None:
    from grader.worker.probes import PROBES

    assert sandbox.probe_names == frozenset(PROBES) and "keyed_forward" in sandbox.probe_names


def test_an_unknown_probe_is_the_suites_error_without_the_library_here(sandbox: Sandbox, client: WorkerClient,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The grading process may not have imported the probe library (it imports torch); a name the sandbox's
    library lacks is still the suite's KeyError, never sent to the worker as the student's failure."""
    from grader.spec import find_spec
    from grader.testing import Built, StudentImplementation

    monkeypatch.delitem(sys.modules, "grader.worker.probes")
    impl = StudentImplementation(client, find_spec("day09"), 10.0)
    assert impl.probe_names() == sandbox.probe_names
    with pytest.raises(KeyError, match="no probe named 'keyed_forwrd'"):
        Built(impl, "ResidualBlock", (8, 8), {}).probe("keyed_forwrd", input_shape=[1, 8, 4, 4])


def test_the_view_holds_nothing_of_the_grader(client: WorkerClient) -> None:
    secret = [ROOT / "grader", ROOT / "grader" / "grading" / "engine.py", ROOT / "courses", ROOT / "reference",
              ROOT / "tests", ROOT / "submissions", ROOT / "tests" / "fixtures" / "minicourse" / "hidden",
              ROOT / "README.md", ROOT / "pyproject.toml", Path.home() / ".ssh", Path("/etc/passwd"),
              Path("/etc/hostname"), Path("/root/.pyenv/versions") / "nonexistent"]
    editable = [Path(line.strip()) for pth in ROOT.glob(".venv/lib/python*/site-packages/__editable__*.pth")
                for line in pth.read_text().splitlines() if line.startswith("/")]
    out = call(client, "run", [str(p) for p in secret + editable], ["/tmp", "/dev/shm", "/home/student", "/",
                                                                     "/etc", "/opt/grader-worker", str(ROOT),
                                                                     str(ROOT / ".venv"), "/usr", "/dev"])
    assert not any(out["seen"].values()), out["seen"]
    assert out["grader"] is False
    assert not any(str(ROOT / "grader") in p for p in out["sys_path"])
    assert set(out["root"]) <= {"bin", "dev", "etc", "home", "lib", "lib64", "opt", "proc", "root", "sbin", "tmp",
                                "usr", "work", "sys", ROOT.parts[1]}
    writable = {k: v for k, v in out["wrote"].items() if isinstance(v, int)}
    private = ("/tmp", "/dev/shm", "/home/student")
    assert set(private) <= set(writable), out["wrote"]
    # A checkout under /tmp is bound read-only into the private /tmp: the folders around the bind are the
    # private tmpfs's own (writable, fresh, sized), and nothing written there reaches the host.
    assert all(folder in private or any(Path(folder).is_relative_to(p) for p in private) for folder in writable), \
        out["wrote"]
    assert all(v == 16 << 20 for v in writable.values())  # sized tmpfs, not host memory
    assert not [folder for folder in writable if folder not in private and (Path(folder) / "probe-write").exists()]


@needs_bwrap
def test_no_network_no_privileges_and_only_our_processes(client: WorkerClient) -> None:
    out = call(client, "run", [], [])
    assert out["inet"] == "PermissionError"
    assert out["interfaces"] == ["lo"]
    assert out["uid"] == 65534 and out["nnp"] == "1" and out["seccomp"] == "2" and int(out["capeff"], 16) == 0
    assert out["pids"] == [1]  # its own PID namespace: only this worker, nothing of the sandbox or the grader
    assert any(e.kind == "refused" and "network" in e.detail for e in client.events)


@needs_bwrap
def test_the_zygote_cannot_be_signalled_traced_or_read(sandbox: Sandbox, client: WorkerClient) -> None:
    generation = sandbox.generation
    out = call(client, "kill_parent")
    if sandbox.namespaces:
        # The zygote is outside the worker's PID namespace: it has no number there to signal or open.
        assert out["ppid"] == 0 and out["all"] == "PermissionError"
        assert out["mem"] == "FileNotFoundError" and out["ptrace"] == -1
    else:
        assert out["parent"] == out["all"] == out["init"] == "PermissionError"
        assert out["mem"] == "PermissionError" and out["libc"] == -1 and out["ptrace"] == -1
    assert sandbox.alive() and sandbox.generation == generation
    assert call(client, "pids_here")  # the same worker still answers


# --------------------------------------------------------------------------- limits and clean-up

@needs_bwrap
@needs_root
def test_process_limit_and_nothing_left_behind(sandbox: Sandbox, client: WorkerClient) -> None:
    call(client, "daemonize")
    out = call(client, "fork_many", 30)
    assert out["refused"] > 0 and out["started"] < 16
    assert any(e.kind == "refused" and "process limit" in e.detail for e in client.events)
    assert len(sandbox.leftover_processes()) > 1
    client.close()
    assert sandbox.leftover_processes() == []
    fresh = WorkerClient(sandbox, {"spy.py": INSPECT.encode()})
    try:
        assert call(fresh, "pids_here") == [1]  # the new worker alone in a new namespace: nothing of the last one
    finally:
        fresh.close()


@needs_bwrap
def test_a_worker_never_walks_what_the_zygote_imported(client: WorkerClient) -> None:
    """torch, numpy and the probes, imported by the zygote, are frozen: a worker's collector leaves them be."""
    assert call(client, "frozen_objects") > 100_000


def test_a_dead_zygote_is_replaced(sandbox: Sandbox) -> None:
    client = WorkerClient(sandbox, {"spy.py": INSPECT.encode()})
    try:
        call(client, "pids_here")
        generation = sandbox.generation
        os.killpg(sandbox.proc.pid, signal.SIGKILL)  # as the OOM killer might
        sandbox.proc.wait(timeout=10)
        # The worker has its own session and PID namespace: the kernel ends it as the zygote's namespace is torn
        # down, which can trail bwrap's own exit by a moment, so a request sent in between may still be answered.
        give_up = time.monotonic() + 10
        with pytest.raises(SubmissionError) as err:
            while time.monotonic() < give_up:
                call(client, "pids_here")
                time.sleep(0.05)
        assert err.value.kind == "crash"
        assert call(client, "pids_here")  # a fresh zygote answers
        assert sandbox.generation == generation + 1
        assert any("restarted" in e.detail for e in client.events)
    finally:
        client.close()


def test_a_worker_that_exits_is_a_crash_not_cheating(sandbox: Sandbox) -> None:
    client = WorkerClient(sandbox, {"spy.py": INSPECT.encode()})
    try:
        with pytest.raises(SubmissionError) as err:
            call(client, "die")
        assert err.value.kind == "crash" and [e.kind for e in client.events] == ["crash"]
        assert "exited with status 3" in client.events[0].detail
        assert call(client, "pids_here")
    finally:
        client.close()


def test_a_crashing_worker_is_reported_with_its_signal(sandbox: Sandbox) -> None:
    client = WorkerClient(sandbox, {"spy.py": INSPECT.encode()})
    try:
        with pytest.raises(SubmissionError) as err:
            call(client, "segfault")
        assert err.value.kind == "crash"
        assert [e.detail for e in client.events] == ["worker ended during a request (killed by signal SIGSEGV)"]
    finally:
        client.close()


def test_a_worker_stopped_by_the_grader_is_not_reported_as_ending_by_itself(sandbox: Sandbox) -> None:
    client = WorkerClient(sandbox, {"spy.py": INSPECT.encode()})
    try:
        assert call(client, "pids_here")
        assert client.restart() is None
    finally:
        client.close()


def test_fallback_without_bubblewrap_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_NO_BWRAP", "1")
    with Sandbox(SandboxConfig(tmp_mb=16, memory_mb=512, max_processes=16)) as s:
        assert "NOT isolated" in s.isolation and not s.use_bwrap
        client = WorkerClient(s, {"spy.py": INSPECT.encode()})
        try:
            assert call(client, "fork_many", 3)["started"] == 3
            assert call(client, "kill_parent")["parent"] == "PermissionError"  # the filter still guards the grader
        finally:
            client.close()
        assert s.leftover_processes() == []


# --------------------------------------------------------------------------- pieces

def test_seccomp_filter_comes_from_libseccomp_and_names_every_path_to_the_grader(tmp_path: Path) -> None:
    """The filter is compiled by libseccomp; its rules cover each syscall that can signal or trace a process."""
    from grader.worker import seccomp_filter

    assert seccomp_filter.missing() is None, "libseccomp (pyseccomp and libseccomp2) must be installed by setup"
    pfc = tmp_path / "filter.pfc"
    with open(pfc, "w") as f:
        flt = seccomp_filter.build([2, 1, 77, -2])
        import pyseccomp

        pyseccomp._libseccomp.seccomp_export_pfc(flt._filter, f.fileno())
    text = pfc.read_text()
    for name in ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal",
                 "pidfd_getfd", "ptrace", "process_vm_readv", "process_vm_writev", "fcntl", "ioctl", "socket",
                 "shmget", "msgget", "semget", "mq_open", "unshare", "setns", "clone", "clone3"):
        assert f"# filter for syscall \"{name}\"" in text, name
    for value in (77, 0xFFFFFFFE, 0xFFFFFFFF, 0x8901, 0x8902, 8, 10, 15):  # pids, -2, -1, ioctl and fcntl commands
        assert f"& 0xffffffff == {value})\n" in text, value


def test_wipe_removes_what_a_submission_leaves(tmp_path: Path) -> None:
    target = tmp_path / "work"
    deep = target.joinpath(*["d"] * 200)  # deeper than most path-based tools like
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    locked = target / "locked" / "inner"
    locked.mkdir(parents=True)
    (locked / "f").write_text("x")
    os.chmod(target / "locked", 0)
    keep = tmp_path / "keep.txt"
    keep.write_text("must survive")
    (target / "link").symlink_to(keep)
    (target / "dirlink").symlink_to(tmp_path)
    cwd = os.getcwd()
    zygote.wipe(target)
    assert os.getcwd() == cwd
    assert target.is_dir() and list(target.iterdir()) == []
    assert keep.read_text() == "must survive"


def test_integrity_check_raises_no_false_alarm_for_the_probes() -> None:
    """Every probe, run on an honest module, changes nothing the monkeypatch guard watches."""
    import torch
    from torch import nn

    from grader.worker.child import Integrity
    from grader.worker.probes import PROBES
    from grader.worker.zygote import preload

    preload()  # a worker's guard is made after what the zygote imports; so is this one

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(4, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn(self.conv(x)))
            return self.fc(self.drop(nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)))

    guard = Integrity()
    assert guard.check() == []
    for name, fn in PROBES.items():
        params = inspect.signature(fn).parameters
        kwargs: dict[str, Any] = {}
        if "input_shape" in params:
            kwargs["input_shape"] = [2, 3, 8, 8]
        if "depth" in params:
            kwargs["depth"] = 2
        if "device" in params:
            kwargs["device"] = "cpu"
        if "steps" in params:
            kwargs["steps"] = 2
        try:
            fn(Block, **kwargs)
        except Exception:  # noqa: BLE001 - some probes want another kind of target; only side effects matter
            pass
        assert guard.check() == [], name
    torch.nn.Module.parameters = lambda self, recurse=True: iter([])  # and a real patch is seen and undone
    assert guard.check() == ["Module.parameters"]
    assert list(nn.Linear(2, 2).parameters())


def test_integrity_check_reads_no_code_object_until_one_is_set() -> None:
    """Reading ``__code__`` is an audited event: an unchanged check reads none, and a swapped code object,
    default or keyword default of a watched function is still seen and put back, again after a restore."""
    from grader.worker import probes
    from grader.worker.child import Integrity

    guard = Integrity()
    reads: list[str] = []
    sys.addaudithook(lambda event, args: reads.append(args[1]) if event == "object.__getattr__"
                     and len(args) > 1 and args[1] in ("__code__", "__defaults__", "__kwdefaults__") else None)
    for _ in range(3):
        assert guard.check() == []
    assert reads == []

    target = probes.PROBES["keyed_forward"]
    code, defaults = target.__code__, target.__defaults__
    for _ in range(2):  # the second swap comes after the first was put back
        target.__code__ = (lambda build, **k: {"output": None}).__code__
        assert guard.check() == [f"{target.__module__}.{target.__qualname__} (its code)"]
        assert target.__code__ is code
        assert guard.check() == []
    target.__defaults__ = tuple(reversed(defaults))
    assert guard.check() and target.__defaults__ is defaults
    assert guard.check() == []


def test_gpu_sandbox_leaves_the_gpu_visible_and_cpu_sandbox_hides_it(monkeypatch):
    from grader.grading.view import bwrap_command

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64")
    gpu = bwrap_command(sys.executable, 64, gpu=True)
    cpu = bwrap_command(sys.executable, 64, gpu=False)
    pairs = lambda cmd: [(cmd[i + 1], cmd[i + 2]) for i, a in enumerate(cmd) if a == "--setenv"]  # noqa: E731
    assert ("CUDA_VISIBLE_DEVICES", "") not in pairs(gpu)
    assert ("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64") in pairs(gpu)
    assert ("CUDA_VISIBLE_DEVICES", "") in pairs(cpu)
    assert "LD_LIBRARY_PATH" not in dict(pairs(cpu))


def test_a_zygote_started_in_the_background_is_waited_for_once() -> None:
    """``Sandbox(config, wait=False)`` returns while the zygote imports torch; ``ready()`` waits, once."""
    config = SandboxConfig(tmp_mb=16, memory_mb=512, max_processes=16, output_bytes=2000)
    started = time.monotonic()
    with Sandbox(config, wait=False) as s:
        launched = time.monotonic() - started
        assert s.proc is not None and s.alive()
        s.ready()
        ready = time.monotonic() - started
        assert launched < ready / 2   # launching did not wait for torch's import in the zygote
        assert s.ready() is s and s.zygote_pid
        client = WorkerClient(s, {"spy.py": INSPECT.encode()})
        try:
            assert call(client, "pids_here")
        finally:
            client.close()
    # closed before it was ever waited for: nothing left running
    pending = Sandbox(config, wait=False)
    pid = pending.proc.pid
    pending.close()
    assert pending.proc.poll() is not None
    # the zygote's namespace is torn down by the kernel a moment after bwrap ends
    give_up = time.monotonic() + 20
    with pytest.raises(ProcessLookupError):
        while time.monotonic() < give_up:
            os.killpg(pid, 0)
            time.sleep(0.05)
