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
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.worker import protocol

WORKER_PACKAGE = Path(__file__).resolve().parents[1] / "worker"
GRADER_PACKAGE = Path(__file__).resolve().parents[1]
INSIDE_ROOT = "/opt/grader-worker"
# The host's procfs, read-only and out of the way: its presence is what lets a worker mount a /proc of its
# own PID namespace (the kernel allows that only where some procfs is fully visible, and bubblewrap's
# /proc has covered subfolders). Every worker covers this folder before it reads the submission.
HOST_PROC = "/opt/host-proc"
WORKDIR = "/home/student"
PRIVATE_FOLDERS = ("/dev/shm", "/tmp", WORKDIR)  # sized tmpfs, the only writable places; fresh for every worker
MEMORY_SLACK_MB = 512  # copy-on-write copies of the zygote's pages a fresh worker makes


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

    def kill_all(self, keep: set[int] | frozenset[int] = frozenset()) -> int:
        """SIGKILL every process in the cgroups but ``keep``; return how many were still there."""
        killed = 0
        for _ in range(40):
            pids = [p for p in self.pids_now() if p not in keep]
            if not pids:
                return killed
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        return killed

    def _read(self, controller: str, name: str) -> str:
        for path in self.paths:
            if f"/{controller}/" in str(path):
                try:
                    return (path / name).read_text()
                except OSError:
                    return ""
        return ""

    def memory_usage(self) -> int:
        text = self._read("memory", "memory.usage_in_bytes").strip()
        return int(text) if text.isdigit() else 0

    def set_memory_limit(self, limit: int) -> None:
        for path in self.paths:
            if "/memory/" not in str(path):
                continue
            files = [path / "memory.limit_in_bytes"]
            if (path / "memory.memsw.limit_in_bytes").exists():
                files.append(path / "memory.memsw.limit_in_bytes")
            for order in (files, files[::-1]):  # memsw may never be below the plain limit
                try:
                    for f in order:
                        f.write_text(str(limit))
                    break
                except OSError:
                    continue

    def oom_kills(self) -> int:
        for line in self._read("memory", "memory.oom_control").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def pids_refused(self) -> int:
        """How many forks the pids limit refused so far (v1 ``pids.events``)."""
        for line in self._read("pids", "pids.events").splitlines():
            if line.startswith("max "):
                return int(line.split()[1])
        return 0

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths:
            for _ in range(40):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
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


def _inside(path: Path, roots: list[str]) -> bool:
    return any(path == Path(r) or Path(r) in path.parents for r in roots)


def _venv_uses_system_packages(prefix: Path) -> bool:
    try:
        cfg = (prefix / "pyvenv.cfg").read_text()
    except OSError:
        return True
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False


def python_view() -> tuple[list[str], list[str]]:
    """What of the interpreter the sandbox needs: (folders to bind read-only, paths inside them to hide).

    The base installation (interpreter, stdlib, libpython) and, in a virtual
    environment, only its ``pyvenv.cfg``, ``bin`` and site-packages: never the
    project folder around it. Hidden: the base installation's own site-packages
    when the environment does not use it, and the grader package itself where
    it is installed as a regular package.
    """
    base = Path(sys.base_prefix).resolve()
    real = Path(sys.executable).resolve()
    roots = {str(base)}
    if not _inside(real, [str(base)]):
        roots.add(str(real.parent.parent))
    for key in ("stdlib", "platstdlib"):
        roots.add(sysconfig.get_paths()[key])
    packages = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    prefix = Path(sys.prefix)
    if prefix.resolve() != base:
        for item in ("pyvenv.cfg", "bin"):
            if (prefix / item).exists():
                roots.add(str(prefix / item))
    roots |= packages
    roots = {r for r in roots if r and os.path.exists(r)}
    hide = []
    if prefix.resolve() != base and not _venv_uses_system_packages(prefix):
        used = {str(Path(p).resolve()) for p in packages}
        for candidate in site.getsitepackages([str(base)]):
            if os.path.isdir(candidate) and str(Path(candidate).resolve()) not in used:
                hide.append(candidate)
    if _inside(GRADER_PACKAGE, sorted(roots)):
        hide.append(str(GRADER_PACKAGE))
    return sorted(roots), hide


GPU_ENVIRONMENT = ("CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG", "LD_LIBRARY_PATH", "NVIDIA_VISIBLE_DEVICES")


def bwrap_command(python: str, tmp_mb: int, gpu: bool, hide: tuple[str, ...] | list[str] = ()) -> list[str]:
    size = str(tmp_mb * 1024 * 1024)
    # No --disable-userns: each worker enters user, mount, IPC, PID and network namespaces of its own
    # (grader.worker.namespaces); the workers' seccomp filter refuses any namespace after that.
    cmd = [bwrap_path() or "bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
           "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534",
           "--hostname", "sandbox", "--ro-bind", "/usr", "/usr", "--dev", "/dev"]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(link):
            cmd += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            cmd += ["--ro-bind", link, link]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        if os.path.exists(f):
            cmd += ["--ro-bind", f, f]
    # The private folders come first, so that a Python environment under one of them (a clone in /tmp)
    # is bound on top of the fresh tmpfs rather than hidden by it.
    for folder in PRIVATE_FOLDERS:
        cmd += ["--size", size, "--tmpfs", folder]
    roots, hidden = python_view()
    for root in roots:
        cmd += ["--ro-bind", root, root]
    for path in [*hidden, *hide]:
        if _inside(Path(path), ["/usr", *roots]) and os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                cmd += ["--tmpfs", path, "--remount-ro", path]
            else:
                cmd += ["--ro-bind", "/dev/null", path]
    cmd += ["--ro-bind", str(WORKER_PACKAGE), f"{INSIDE_ROOT}/grader_worker",
            "--proc", "/proc", "--ro-bind", "/proc", HOST_PROC,
            "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "TMPDIR", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp",
            "--setenv", "USER", "student", "--setenv", "LOGNAME", "student",
            "--chdir", WORKDIR]
    if gpu:
        for dev in sorted(Path("/dev").glob("nvidia*")):
            if dev.is_char_device():
                cmd += ["--dev-bind", str(dev), str(dev)]
        cmd += ["--ro-bind", "/sys", "/sys"]
        for var in GPU_ENVIRONMENT:
            if var in os.environ:
                cmd += ["--setenv", var, os.environ[var]]
    else:
        cmd += ["--setenv", "CUDA_VISIBLE_DEVICES", ""]
    # Nothing but the sized tmpfs folders is writable: not the root of the view, not /dev.
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return cmd


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
        return self.proc is not None and self.proc.poll() is None

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


_BWRAP_OK: bool | None = None


def _bwrap_works() -> bool:
    """Whether bubblewrap can build our view here (probed once; GRADER_NO_BWRAP=1 turns it off)."""
    global _BWRAP_OK
    if os.environ.get("GRADER_NO_BWRAP") == "1":
        return False
    if _BWRAP_OK is None:
        try:
            r = subprocess.run(bwrap_command(sys.executable, 16, False) + ["/bin/true"],
                               capture_output=True, timeout=20)
            _BWRAP_OK = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _BWRAP_OK = False
    return _BWRAP_OK
