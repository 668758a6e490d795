"""Starting the sandboxed zygote: bubblewrap when available, a bare process otherwise.

Inside bubblewrap the worker sees read-only system libraries, the Python
installation, the virtual environment's site-packages and the worker package,
a sized private tmpfs, and nothing else: no network, no grader, no hidden
suites, no reference, no other student. A pids cgroup bounds the process count
and a memory cgroup bounds memory (both work for root and with CUDA); where
cgroups cannot be created, RLIMIT_AS and RLIMIT_NPROC are used instead and the
weaker isolation is written into every result.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.worker import protocol

WORKER_PACKAGE = Path(__file__).resolve().parent / "worker"
INSIDE_ROOT = "/opt/grader-worker"
WORKDIR = "/home/student"


class SandboxError(Exception):
    """The sandbox could not be started."""


@dataclass
class Cgroups:
    """v1 pids and memory cgroups for one sandbox (removed when it closes)."""

    paths: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, max_pids: int, memory_bytes: int | None) -> "Cgroups | None":
        if os.geteuid() != 0:
            return None
        groups = cls()
        name = f"grader-{uuid.uuid4().hex[:12]}"
        try:
            for controller, settings in (("pids", {"pids.max": str(max_pids)}),
                                         ("memory", {"memory.limit_in_bytes": str(memory_bytes)} if memory_bytes else {})):
                base = Path("/sys/fs/cgroup") / controller / _own_cgroup(controller).lstrip("/")
                path = base / name
                path.mkdir()
                groups.paths.append(path)
                for key, value in settings.items():
                    (path / key).write_text(value)
                if controller == "memory" and memory_bytes:
                    swap = path / "memory.memsw.limit_in_bytes"
                    if swap.exists():
                        swap.write_text(str(memory_bytes))
        except OSError:
            groups.remove()
            return None
        return groups

    def enter(self) -> None:
        """Called in the child between fork and exec."""
        for path in self.paths:
            (path / "cgroup.procs").write_text(str(os.getpid()))

    def pids_now(self) -> list[int]:
        pids: list[int] = []
        for path in self.paths[:1]:
            try:
                pids = [int(x) for x in (path / "cgroup.procs").read_text().split()]
            except OSError:
                pass
        return pids

    def kill_all(self) -> None:
        for _ in range(20):
            pids = self.pids_now()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def oom_kills(self) -> int:
        for path in self.paths:
            control = path / "memory.oom_control"
            if control.exists():
                for line in control.read_text().splitlines():
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
        return 0

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths:
            for _ in range(20):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def _own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise OSError(f"no {controller} cgroup")


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _python_roots() -> list[str]:
    roots = {sys.base_prefix, sys.prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        roots.add(sysconfig.get_paths()[key])
    # resolve the interpreter symlink chain so the binary itself is visible
    roots.add(str(Path(sys.executable).resolve().parent.parent))
    return sorted(r for r in roots if r and os.path.isdir(r))


def bwrap_command(python: str, tmp_mb: int, gpu: bool) -> list[str]:
    cmd = [bwrap_path() or "bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
           "--cap-drop", "ALL", "--disable-userns", "--uid", "65534", "--gid", "65534",
           "--ro-bind", "/usr", "/usr"]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(link):
            cmd += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            cmd += ["--ro-bind", link, link]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        if os.path.exists(f):
            cmd += ["--ro-bind", f, f]
    for root in _python_roots():
        cmd += ["--ro-bind", root, root]
    cmd += ["--ro-bind", str(WORKER_PACKAGE), f"{INSIDE_ROOT}/grader_worker",
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", "/tmp",
            "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", WORKDIR,
            "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "TMPDIR", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp",
            "--chdir", WORKDIR]
    if gpu:
        for dev in sorted(Path("/dev").glob("nvidia*")):
            cmd += ["--dev-bind", str(dev), str(dev)]
        cmd += ["--ro-bind", "/sys", "/sys"]
        for var in ("CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG"):
            if var in os.environ:
                cmd += ["--setenv", var, os.environ[var]]
    else:
        cmd += ["--setenv", "CUDA_VISIBLE_DEVICES", ""]
    return cmd


def _zygote_argv(python: str, root: str, fd: int) -> list[str]:
    boot = f"import sys; sys.path.insert(0, {root!r}); from grader_worker.zygote import main; main()"
    return [python, "-I", "-c", boot, str(fd)]


@dataclass
class SandboxConfig:
    tmp_mb: int = 256
    memory_mb: int = 6144
    max_processes: int = 64
    threads: int = 1
    output_bytes: int = 20_000
    gpu: bool = False
    require_bwrap: bool = False


class Sandbox:
    """One zygote; spawns one worker at a time for a submission."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        memory_budget = (config.memory_mb + 2048) * 1024 * 1024
        self.cgroups = Cgroups.create(config.max_processes, memory_budget)
        python = sys.executable
        use_bwrap = bwrap_path() is not None and _bwrap_works()
        if config.require_bwrap and not use_bwrap:
            raise SandboxError("bubblewrap is required but not usable here")
        if use_bwrap:
            argv = bwrap_command(python, config.tmp_mb, config.gpu) + _zygote_argv(python, INSIDE_ROOT, theirs.fileno())
            self.isolation = "bubblewrap (no network; private filesystem view; dropped capabilities)"
            self.workdir = WORKDIR
            self._host_tmp = None
        else:
            self._host_tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"grader-worker-{uuid.uuid4().hex[:8]}"
            self._host_tmp.mkdir(mode=0o700)
            argv = _zygote_argv(python, str(WORKER_PACKAGE.parent.parent / "grader"), theirs.fileno())
            argv = [python, "-I", "-c",
                    f"import sys; sys.path.insert(0, {str(WORKER_PACKAGE.parent)!r}); "
                    "import worker as grader_worker; sys.modules['grader_worker'] = grader_worker; "
                    "from grader_worker.zygote import main; main()", str(theirs.fileno())]
            self.isolation = "process only (bubblewrap unavailable: network and filesystem NOT isolated)"
            self.workdir = str(self._host_tmp)
        if self.cgroups:
            self.isolation += f"; pids<= {config.max_processes} and memory<= {memory_budget >> 20} MiB by cgroup"
        else:
            self.isolation += "; limits by rlimit only"
        env = {"PATH": "/usr/bin:/bin", "HOME": self.workdir, "CUDA_VISIBLE_DEVICES": "" if not config.gpu else os.environ.get("CUDA_VISIBLE_DEVICES", "")}
        if not config.gpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
        cgroups = self.cgroups
        self.proc = subprocess.Popen(
            argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, cwd=str(self._host_tmp or "/"), start_new_session=True,
            preexec_fn=cgroups.enter if cgroups else None,
        )
        theirs.close()
        try:
            hello = protocol.recv(self.control, deadline=time.monotonic() + 120)
        except (protocol.ProtocolError, TimeoutError) as e:
            err = self._stderr_tail()
            self.close()
            raise SandboxError(f"worker failed to start: {e}; {err}") from None
        self.zygote_pid = hello.get("pid")

    def _stderr_tail(self) -> str:
        try:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
            return err.decode(errors="replace")[-2000:]
        except Exception:  # noqa: BLE001
            return ""

    def _control(self, message: dict[str, Any], fds: list[int] | None = None, timeout: float = 30) -> dict[str, Any]:
        if fds:
            socket.send_fds(self.control, [b"F"], fds)
        else:
            self.control.sendall(b"F")
        protocol.send(self.control, message)
        return protocol.recv(self.control, deadline=time.monotonic() + timeout)

    def rlimits(self) -> dict[str, int]:
        limits = {"RLIMIT_FSIZE": self.config.tmp_mb * 1024 * 1024, "RLIMIT_CORE": 0}
        if not self.cgroups:
            if os.geteuid() != 0:
                limits["RLIMIT_NPROC"] = self.config.max_processes
            if not self.config.gpu:
                limits["RLIMIT_AS"] = (self.config.memory_mb + 8192) * 1024 * 1024
        return limits

    def spawn(self, files: dict[str, bytes]) -> socket.socket:
        """Fork a fresh worker holding ``files``; return the socket to talk to it."""
        import numpy as np

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = {"workdir": f"{self.workdir}/submission", "rlimits": self.rlimits(),
                  "threads": self.config.threads, "output_bytes": self.config.output_bytes}
        payload = {rel: np.frombuffer(data, dtype=np.uint8) for rel, data in files.items()}
        try:
            self._control({"op": "spawn", "config": config, "files": payload}, fds=[theirs.fileno()])
        finally:
            theirs.close()
        return ours

    def kill_workers(self) -> None:
        """End every process in the sandbox but the zygote and wipe the private folders."""
        self._control({"op": "kill", "wipe": [f"{self.workdir}/submission", "/tmp" if self._host_tmp is None else self.workdir]})

    def oom_kills(self) -> int:
        return self.cgroups.oom_kills() if self.cgroups else 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        try:
            if self.alive():
                self._control({"op": "exit"}, timeout=10)
        except Exception:  # noqa: BLE001 - closing must not fail
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroups:
            self.cgroups.remove()
        self.proc.wait(timeout=10)
        self.control.close()
        if self._host_tmp is not None:
            shutil.rmtree(self._host_tmp, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_BWRAP_OK: bool | None = None


def _bwrap_works() -> bool:
    global _BWRAP_OK
    if _BWRAP_OK is None:
        if os.environ.get("GRADER_NO_BWRAP") == "1":
            _BWRAP_OK = False
        else:
            try:
                r = subprocess.run([bwrap_path(), "--unshare-all", "--ro-bind", "/", "/", "true"],
                                   capture_output=True, timeout=20)
                _BWRAP_OK = r.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                _BWRAP_OK = False
    return _BWRAP_OK
