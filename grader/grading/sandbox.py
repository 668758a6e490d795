"""Starting the sandboxed zygote: bubblewrap when available, a bare process otherwise.

Inside bubblewrap the worker sees read-only system libraries, the Python
installation, the virtual environment's site-packages and the worker package,
sized private tmpfs folders (``/tmp``, ``/dev/shm`` and the work folder), and
nothing else: no network, no grader, no hidden suites, no reference, no other
student; the root of that view is read-only. A pids cgroup bounds the process
count and a memory cgroup bounds memory (both work for root and with CUDA);
where cgroups cannot be created, RLIMIT_AS and RLIMIT_NPROC are used instead and
the weaker isolation is written into every result.

The zygote is restarted transparently if it dies (a worker cannot kill it
through the seccomp filter, but the kernel's OOM killer might): the next
``spawn`` starts a fresh one and ``generation`` counts the restarts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.grading.cgroups import Cgroups
from grader.grading.view import (GPU_ENVIRONMENT, HOST_PROC, INSIDE_ROOT, PRIVATE_FOLDERS, WORKDIR, WORKER_PACKAGE,
                                 _bwrap_works, _inside, bwrap_command, bwrap_path, python_view)
from grader.worker import protocol


MEMORY_SLACK_MB = 512  # copy-on-write copies of the zygote's pages a fresh worker makes


class SandboxError(Exception):
    """The sandbox could not be started."""


def _zygote_argv(python: str, root: str, fd: int, host_proc: str) -> list[str]:
    """``host_proc``: the folder the host's procfs is bound on, or "" for no fresh namespaces per worker."""
    boot = f"import sys; sys.path.insert(0, {root!r}); from grader_worker.zygote import main; main()"
    return [python, "-I", "-c", boot, str(fd), host_proc]


@dataclass
class SandboxConfig:
    tmp_mb: int = 256
    memory_mb: int = 6144
    max_processes: int = 64
    threads: int = 1
    output_bytes: int = 20_000
    gpu: bool = False
    require_bwrap: bool = False
    seccomp: bool = True
    hide: tuple[str, ...] = ()
    namespaces: bool = True  # fresh namespaces per worker where the kernel allows them

    @classmethod
    def for_spec(cls, spec: Any, threads: int = 1, gpu: bool = False) -> "SandboxConfig":
        """The sandbox a grading session of ``spec`` uses (its limits; ``threads`` for torch; the GPU or not)."""
        limits = spec.limits
        return cls(tmp_mb=limits.tmp_mb, memory_mb=limits.memory_mb, max_processes=limits.max_processes,
                   threads=threads, output_bytes=limits.output_bytes, gpu=gpu)


class Sandbox:
    """One zygote; spawns one worker at a time for a submission."""

    def __init__(self, config: SandboxConfig, wait: bool = True) -> None:
        """Start the zygote; with ``wait=False`` return as soon as it is launched (it imports torch in the
        background while the caller does other work) and let ``ready()`` wait for it."""
        self.config = config
        self.memory_budget = (config.memory_mb + 2048) * 1024 * 1024
        self.cgroups = Cgroups.create(config.max_processes, self.memory_budget)
        self.use_bwrap = bwrap_path() is not None and _bwrap_works()
        if config.require_bwrap and not self.use_bwrap:
            if self.cgroups:
                self.cgroups.remove()
            raise SandboxError("bubblewrap is required but not usable here")
        self._host_tmp: Path | None = None
        self._boot_root: Path | None = None
        if self.use_bwrap:
            self.workdir = WORKDIR
        else:
            self._host_tmp = Path(tempfile.mkdtemp(prefix="grader-worker-"))
            self.workdir = str(self._host_tmp)
            # The worker package gets the one name it has inside bubblewrap, ``grader_worker``,
            # through a link in a folder of its own (never wiped between submissions).
            self._boot_root = Path(tempfile.mkdtemp(prefix="grader-boot-"))
            (self._boot_root / "grader_worker").symlink_to(WORKER_PACKAGE, target_is_directory=True)
        # Parts of the Python environment that live under a private folder (a clone in /tmp): each worker
        # binds them again on top of its own fresh folder.
        self._kept = [root for root in python_view()[0] if _inside(Path(root), list(PRIVATE_FOLDERS))]
        self.generation = 0
        self.seccomp = False
        self.seccomp_missing: str | None = None
        self.namespaces: str | None = None
        self.probe_names: frozenset[str] = frozenset()   # the zygote's probe library, named when it is ready
        self.proc: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None
        self._baseline: set[int] = set()
        self._pending = False
        self._start(wait)

    # ------------------------------------------------------------------ start and stop
    def _start(self, wait: bool = True) -> None:
        config = self.config
        if self.cgroups:
            self.memory_budget = (config.memory_mb + 2048) * 1024 * 1024  # room to start; tightened once ready
            self.cgroups.set_memory_limit(self.memory_budget)
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        python = sys.executable
        if self.use_bwrap:
            argv = (bwrap_command(python, config.tmp_mb, config.gpu, config.hide)
                    + _zygote_argv(python, INSIDE_ROOT, theirs.fileno(), HOST_PROC if config.namespaces else ""))
        else:
            argv = _zygote_argv(python, str(self._boot_root), theirs.fileno(), "")
        env = {"PATH": "/usr/bin:/bin", "HOME": self.workdir}
        if config.gpu:
            # The GPU stays visible as the host sees it; the driver's libraries may sit on LD_LIBRARY_PATH.
            env.update({k: os.environ[k] for k in GPU_ENVIRONMENT if k in os.environ})
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
        # A pipe, read only if start-up fails and closed once the zygote is ready: nothing in the sandbox
        # keeps a host file open (the zygote points its own stderr at /dev/null when ready).
        cgroups = self.cgroups
        self.proc = subprocess.Popen(
            argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, cwd=str(self._host_tmp or "/"), start_new_session=True,
            preexec_fn=cgroups.enter if cgroups else None,
        )
        theirs.close()
        self._started_by = os.getpid()
        self._pending = True
        self._launched = time.monotonic()
        if wait:
            self.ready()

    def ready(self) -> "Sandbox":
        """Wait until the zygote says it is ready (at once when it already has)."""
        if not self._pending:
            return self
        self._pending = False
        config = self.config
        try:
            hello = protocol.recv(self.control, deadline=self._launched + 120)
        except (protocol.ProtocolError, TimeoutError) as e:
            err = self._stderr_tail()
            self.close()
            raise SandboxError(f"worker failed to start: {e}; {err}") from None
        self._close_stderr()
        self.zygote_pid = hello.get("pid")
        self.probe_names = frozenset(p for p in hello.get("probes") or () if isinstance(p, str))
        self.seccomp = bool(hello.get("seccomp")) and config.seccomp
        self.seccomp_missing = hello.get("seccomp_missing") if config.seccomp else None
        self.namespaces = hello.get("namespaces") if self.use_bwrap and config.namespaces else None
        if self.cgroups:
            self._baseline = set(self.cgroups.pids_now())
            self._protect_zygote()
            # The student's allowance comes on top of what the zygote already holds (torch, imported once).
            self.memory_budget = self.cgroups.memory_usage() + (config.memory_mb + MEMORY_SLACK_MB) * 1024 * 1024
            self.cgroups.set_memory_limit(self.memory_budget)
        return self

    def _protect_zygote(self) -> None:
        """As root: make the zygote the OOM killer's last choice in its cgroup (workers raise their own score)."""
        for pid in self._baseline:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                nspid = [line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")]
                if nspid and nspid[0] and int(nspid[0][-1]) == self.zygote_pid:
                    Path(f"/proc/{pid}/oom_score_adj").write_text("-900")
            except (OSError, ValueError):
                pass

    @property
    def isolation(self) -> str:
        if self.use_bwrap:
            text = "bubblewrap (no network; private read-only filesystem view; dropped capabilities; no new privileges)"
        else:
            text = "process only (bubblewrap unavailable: network and filesystem NOT isolated)"
        if self.namespaces:
            text += ("; fresh namespaces per student (user, mount, IPC, PID, network; private folders"
                     + ("; own /proc)" if self.namespaces == "own" else "; no /proc)"))
        elif self.use_bwrap:
            text += "; one sandbox shared by the class's workers (fresh namespaces per student unavailable here)"
        if self.seccomp:
            text += "; seccomp by libseccomp (no signals or tracing of the grader, no IP or raw sockets, no IPC objects)"
        elif self.seccomp_missing:
            text += f"; NO seccomp filter: {self.seccomp_missing}"
        if self.cgroups:
            text += f"; pids<= {self.config.max_processes} and memory<= {self.memory_budget >> 20} MiB by cgroup"
        else:
            text += "; limits by rlimit only"
        return text

    def _stderr_tail(self) -> str:
        try:
            if self.proc is not None:
                self.proc.kill()
                self.proc.wait(timeout=5)
                if self.proc.stderr is not None:
                    os.set_blocking(self.proc.stderr.fileno(), False)
                    return (self.proc.stderr.read(1 << 16) or b"")[-2000:].decode(errors="replace")
        except Exception:  # noqa: BLE001
            pass
        return ""

    def _close_stderr(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def _stop(self) -> None:
        """End the zygote and everything it started; the cgroups stay for a restart."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.cgroups:
            self.cgroups.kill_all()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.control is not None:
            self.control.close()
        self._close_stderr()

    def restart(self) -> None:
        """Replace a dead (or wedged) zygote with a fresh one."""
        self._stop()
        if self._host_tmp is not None:
            _clear(self._host_tmp)
        self.generation += 1
        self._start()

    # ------------------------------------------------------------------ control channel
    def _control(self, message: dict[str, Any], fds: list[int] | None = None, timeout: float = 30) -> dict[str, Any]:
        assert self.control is not None
        deadline = time.monotonic() + timeout
        self.control.settimeout(timeout)
        if fds:
            socket.send_fds(self.control, [b"F"], fds)
        else:
            self.control.sendall(b"F")
        protocol.send(self.control, message, deadline=deadline)
        return protocol.recv(self.control, deadline=deadline)

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

        payload = {rel: np.frombuffer(data, dtype=np.uint8) for rel, data in files.items()}
        for attempt in range(2):
            if not self.alive():
                self.restart()
            config = {"workdir": f"{self.workdir}/submission", "rlimits": self.rlimits(),
                      "seccomp": self.config.seccomp, "threads": self.config.threads,
                      "output_bytes": self.config.output_bytes, "namespaces": bool(self.namespaces),
                      "private": self._wipe_list(), "private_bytes": self.config.tmp_mb * 1024 * 1024,
                      "host_proc": HOST_PROC, "keep": self._kept}
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._control({"op": "spawn", "config": config}, fds=[theirs.fileno()])
                # The files go to the worker itself, after the fork: the zygote never holds a submission.
                protocol.send(ours, {"files": payload}, deadline=time.monotonic() + 60)
                return ours
            except (OSError, protocol.ProtocolError, TimeoutError) as e:
                ours.close()
                if attempt:
                    raise SandboxError(f"the sandbox could not start a worker: {e}") from None
                self.restart()  # the zygote died or wedged: start over once
            finally:
                theirs.close()
        raise SandboxError("unreachable")

    def _wipe_list(self) -> list[str]:
        return list(PRIVATE_FOLDERS) if self.use_bwrap else [self.workdir]

    def kill_workers(self, ended: bool = False) -> str | None:
        """End every process in the sandbox but the zygote and wipe the private folders.

        Returns how the worker ended when it ended by itself before this call
        (``killed by signal SIGSEGV``, ``exited with status 0``), else None.
        ``ended``: the worker's channel closed, so it is probably dying; the
        zygote waits a moment for it, to report how it ended rather than kill it.
        """
        if not self.alive():
            return "the sandbox's parent process had ended"  # the next spawn restarts it
        try:
            reply = self._control({"op": "kill", "wipe": self._wipe_list(), "sweep_namespace": self.use_bwrap,
                                   "await_end": 0.5 if ended else 0})
        except (OSError, protocol.ProtocolError, TimeoutError):
            try:
                self.restart()
            except SandboxError:
                pass  # everything it held is gone; the next spawn tries again and reports
            return None
        if self.cgroups:
            # Belt and braces: whatever the zygote missed, the cgroup still lists.
            self.cgroups.kill_all(keep=self._baseline)
        how = reply.get("ended")
        return "; ".join(str(e)[:80] for e in how[:5]) if isinstance(how, list) and how else None

    def leftover_processes(self) -> list[int]:
        """Host pids in this sandbox's cgroup other than bubblewrap and the zygote (empty after ``kill_workers``)."""
        if not self.cgroups:
            return []
        return [p for p in self.cgroups.pids_now() if p not in self._baseline]

    def oom_kills(self) -> int:
        return self.cgroups.oom_kills() if self.cgroups else 0

    def pids_refused(self) -> int:
        return self.cgroups.pids_refused() if self.cgroups else 0

    def alive(self) -> bool:
        if self.proc is None:
            return False
        if os.getpid() == getattr(self, "_started_by", os.getpid()):
            return self.proc.poll() is None
        # A process forked from the one that started the zygote (a lane's grading process) cannot wait for it:
        # waitpid would fail there, and Popen would take that for an exit.
        try:
            state = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    def close(self) -> None:
        try:
            if self.alive() and not self._pending:
                self._control({"op": "exit", "sweep_namespace": self.use_bwrap}, timeout=10)
        except Exception:  # noqa: BLE001 - closing must not fail
            pass
        self._stop()
        if self.cgroups:
            self.cgroups.remove()
        for folder in (self._host_tmp, self._boot_root):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clear(folder: Path) -> None:
    for item in folder.iterdir() if folder.exists() else []:
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
