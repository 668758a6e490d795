"""The pre-imported parent of every worker in one sandbox.

It pays for ``import torch`` once, then forks a fresh child per submission (and
again after a child is killed). It never runs a tensor operation itself, so no
thread pool exists at fork time, and it never initialises CUDA before a fork.

Control requests arrive on the socket whose descriptor is ``argv[1]``:
``spawn`` (with a request socket passed by SCM_RIGHTS and the submission's files
as blobs), ``kill`` (end every process but this one, wipe the work folders) and
``exit``.

The zygote shares its user id with the workers, so it protects itself: it is a
child subreaper (orphans and double-forked daemons come back to it, so ``kill``
finds them), it is not dumpable (a worker can neither ptrace it nor open its
``/proc/<pid>/mem`` or descriptors), and every worker installs a seccomp filter
before any student code runs that refuses to signal, trace or re-limit the
zygote and the sandbox's init, and refuses IPv4/IPv6 sockets, SysV IPC, kernel
keyrings, io_uring, bpf and perf events.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import signal
import socket
import stat
import sys
import time
from pathlib import Path
from typing import Any

from . import namespaces, protocol, seccomp_filter

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
WORKER_UNSAFE = 97  # exit status of a worker that stopped before student code: its sandbox could not be made
FILES_TIMEOUT_S = 60


def _prctl(option: int, value: int, arg3: ctypes.c_void_p | None = None) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), arg3 if arg3 is not None else ctypes.c_ulong(0),
                      ctypes.c_ulong(0), ctypes.c_ulong(0))


# --------------------------------------------------------------------------- probes of what this kernel allows

def _in_throwaway_child(fn: Any) -> int:
    """Run ``fn`` in a forked child and return its exit status (-1 if it did not exit normally)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = int(fn())
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1


def _seccomp_works(me: int) -> bool:
    """Whether a worker will get the filter here: a throwaway child installs it and exits."""
    return _in_throwaway_child(lambda: 0 if seccomp_filter.install([me]) else 1) == 0


_PROC_MODES = {0: "own", 3: "hidden"}


def _namespaces_work(host_proc: str | None) -> str | None:
    """Whether workers get fresh namespaces here, and how their /proc is made ("own", "hidden"); None if not."""
    def keeper() -> int:
        namespaces.enter_keeper()
        return _in_throwaway_child(lambda: 0 if namespaces.set_up_worker(["/tmp"], 1 << 20, host_proc) == "own" else 3)

    return _PROC_MODES.get(_in_throwaway_child(keeper))


# --------------------------------------------------------------------------- processes

def _parent_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat_line = f.read().decode(errors="replace")
        return int(stat_line[stat_line.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(root: int) -> list[int]:
    """Every process whose parent chain leads to ``root`` (orphans come back to us as subreaper)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(entry)
            if parent is not None:
                parents[int(entry)] = parent
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found += kids
        frontier += kids
    return found


def _in_own_namespace() -> bool:
    """True only inside bubblewrap's pid namespace, where pid 1 is bubblewrap's init and our parent."""
    try:
        with open("/proc/1/comm") as f:
            return os.getppid() == 1 and f.read().strip() == "bwrap"
    except OSError:
        return False


def _namespace_others(me: int) -> list[int]:
    """Inside the sandbox's own pid namespace: every process but its init (1) and this one."""
    if not _in_own_namespace():
        return []
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in (1, me)]


def kill_all_but_me(sweep_namespace: bool = False) -> int:
    me, killed = os.getpid(), 0
    for _ in range(50):
        pids = set(descendants(me))
        if sweep_namespace:
            pids.update(_namespace_others(me))
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        reap()
    reap()
    return killed


def how_it_ended(status: int) -> str:
    """A wait status in words: ``exited with status 3`` or ``killed by signal SIGSEGV``."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"killed by signal {name}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return f"ended (wait status {status})"


def reap() -> list[tuple[int, int]]:
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


# --------------------------------------------------------------------------- files

def wipe(folder: Path) -> None:
    """Empty ``folder`` whatever a submission left in it: unreadable folders, deep nesting, links.

    It walks by ``chdir`` so that neither path length nor open descriptors limit
    the depth, never follows a symbolic link, and gives up on nothing it can fix
    by ``chmod`` (the files belong to the same user).
    """
    try:
        st = os.lstat(folder)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    here = os.getcwd()
    names: list[str] = []
    try:
        os.chmod(folder, 0o700)
        os.chdir(folder)
        stuck: set[tuple[int, str]] = set()
        while True:
            sub = None
            with os.scandir(".") as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if (len(names), entry.name) not in stuck:
                                sub = entry.name
                                break
                        else:
                            os.unlink(entry.name)
                    except OSError:
                        pass
            if sub is not None:
                try:
                    os.chmod(sub, 0o700, follow_symlinks=False)
                except (OSError, NotImplementedError):
                    pass
                try:
                    os.chdir(sub)
                    names.append(sub)
                    continue
                except OSError:
                    stuck.add((len(names), sub))
                    continue
            if not names:
                break
            os.chdir("..")
            left = names.pop()
            try:
                os.rmdir(left)
            except OSError:
                stuck.add((len(names), left))
    except OSError:
        pass
    finally:
        try:
            os.chdir(here)
        except OSError:
            os.chdir("/")
    try:
        os.chmod(folder, 0o755)
    except OSError:
        pass


def write_files(folder: Path, files: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    for rel, data in files.items():
        path = (folder / rel).resolve()
        if root not in path.parents:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.tobytes())


# --------------------------------------------------------------------------- the worker

def _close_all_but(keep: int) -> None:
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)


def become_worker(sock: socket.socket, config: dict[str, Any], protected: list[int]) -> None:
    """In the worker: own session, private folders, limits and filters, then the files, then serve requests.

    The submission's files arrive on the worker's own socket, after the fork:
    the zygote never holds them, so no later worker inherits any of them.
    """
    os.setsid()
    _close_all_but(sock.fileno())
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for name in ("SIGINT", "SIGTERM", "SIGCHLD", "SIGPIPE"):
        signal.signal(getattr(signal, name), signal.SIG_DFL if name != "SIGPIPE" else signal.SIG_IGN)
    try:  # if memory runs out, the worker is the one the kernel picks, never the zygote
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("800")
    except OSError:
        pass
    if config.get("namespaces"):
        try:
            namespaces.set_up_worker(list(config["private"]), int(config["private_bytes"]), config.get("host_proc"),
                                     list(config.get("keep", [])))
        except OSError:
            os._exit(WORKER_UNSAFE)  # never run student code in a half-made sandbox
    message = protocol.recv(sock, deadline=time.monotonic() + FILES_TIMEOUT_S)
    folder = Path(config["workdir"])
    write_files(folder, message.get("files", {}))
    del message
    for name, value in config.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if config.get("seccomp", True):
        seccomp_filter.install(protected)
    import torch

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    from .child import run

    run(sock, str(folder), int(config.get("output_bytes", 20000)), protected=protected)


def keep_worker(sock: socket.socket, config: dict[str, Any]) -> None:
    """In the keeper: enter fresh namespaces, fork the worker as their process 1, and end as it ends.

    The keeper stays in the zygote's PID namespace (so the zygote reaps it and
    learns how the worker ended); nothing in the worker's namespace can see it.
    """
    _close_all_but(sock.fileno())
    try:
        namespaces.enter_keeper()
    except OSError:
        os._exit(WORKER_UNSAFE)
    pid = os.fork()
    if pid == 0:
        try:
            become_worker(sock, config, [])  # in its own PID namespace no process of the grader has a number
        finally:
            os._exit(0)
    sock.close()
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def preload() -> None:
    """Import, once in the zygote, what every forked worker would otherwise import itself.

    Runs before any worker's integrity guard takes its snapshot, so what these imports patch (importing
    ``torch._dynamo`` wraps ``torch.manual_seed``, for one) is the baseline the guard compares with.
    """
    import numpy  # noqa: F401 - paid once here, inherited by every child
    import torch  # noqa: F401
    import torch.nn  # noqa: F401
    import torch.nn.functional  # noqa: F401

    # An optimizer's first use imports torch._dynamo (1-2 s): imported here, the zygote pays it once instead
    # of every forked worker. (The trusted side never needs it unless it computes the reference's training.)
    import torch._dynamo  # noqa: F401

    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - optional for submissions
        pass
    from . import probes  # noqa: F401


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    preload()

    me = os.getpid()
    host_proc = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    fresh = _namespaces_work(host_proc) if host_proc else None
    from .probes import PROBES

    protocol.send(control, {"ready": True, "pid": me, "probes": sorted(PROBES), "seccomp": _seccomp_works(me),
                            "seccomp_missing": seccomp_filter.missing(), "namespaces": fresh})
    devnull = os.open(os.devnull, os.O_WRONLY)  # nothing of the host stays open for a worker to inherit
    os.dup2(devnull, 2)
    os.close(devnull)
    # What is alive now (torch, numpy, the probes: about 330,000 objects) is never garbage in a worker: frozen,
    # a worker's collector never walks it (a full collection cost 0.12 s per submission) nor writes to the pages
    # it shares with this process.
    gc.freeze()
    workers: set[int] = set()
    ended: list[str] = []  # how workers ended on their own since the last ``kill``

    def collect(wait_s: float = 0.0) -> None:
        """Reap what has ended; with ``wait_s``, give a worker whose channel closed that long to finish dying."""
        deadline = time.monotonic() + min(max(wait_s, 0.0), 1.0)
        while True:
            for pid, status in reap():
                if pid in workers:
                    workers.discard(pid)
                    ended.append(how_it_ended(status))
            if not workers or time.monotonic() >= deadline:
                return
            time.sleep(0.005)

    while True:
        try:
            _, fds, _, _ = socket.recv_fds(control, 1, 1)
            msg = protocol.recv(control)
        except (protocol.ProtocolError, OSError, ConnectionError):
            kill_all_but_me()
            return
        op = msg.get("op")
        if op == "spawn":
            sock = socket.socket(fileno=fds[0])
            # Processes a worker must leave alone: this one (and each of its threads),
            # the sandbox's init, and the process that started us.
            protected = sorted({me, 1, os.getppid(), *(int(t) for t in os.listdir("/proc/self/task"))}
                               | {-me, -os.getpgid(0)})
            config = msg["config"]
            pid = os.fork()
            if pid == 0:
                try:
                    control.close()
                    if config.get("namespaces"):
                        keep_worker(sock, config)
                    else:
                        become_worker(sock, config, protected)
                finally:
                    os._exit(0)
            sock.close()
            workers.add(pid)
            protocol.send(control, {"pid": pid})
        elif op == "kill":
            for fd in fds:
                os.close(fd)
            collect(float(msg.get("await_end", 0)))  # before killing: a worker already gone ended by itself
            killed = kill_all_but_me(bool(msg.get("sweep_namespace")))
            for folder in msg.get("wipe", []):
                wipe(Path(folder))
            protocol.send(control, {"killed": killed, "ended": ended[-5:]})
            workers.clear()
            ended.clear()
        elif op == "exit":
            kill_all_but_me(bool(msg.get("sweep_namespace")))
            protocol.send(control, {"bye": True})
            return
        else:
            for fd in fds:
                os.close(fd)
            protocol.send(control, {"error": f"unknown op {op!r}"})
        collect()


if __name__ == "__main__":
    main()
