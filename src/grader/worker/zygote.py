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
import errno
import os
import platform
import resource
import signal
import socket
import stat
import struct
import sys
import time
from pathlib import Path
from typing import Any

PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2


def _prctl(option: int, value: int, arg3: ctypes.c_void_p | None = None) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), arg3 if arg3 is not None else ctypes.c_ulong(0),
                      ctypes.c_ulong(0), ctypes.c_ulong(0))


# --------------------------------------------------------------------------- seccomp

# Syscall numbers of the architectures we know (x86_64 from <asm/unistd_64.h>,
# aarch64 from the generic table). Anything else runs without the filter and
# says so in the worker's isolation report.
_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {
        "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
        "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438, "process_madvise": 440,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "prlimit64": 302,
        "sched_setaffinity": 203, "sched_setscheduler": 144, "sched_setparam": 142, "sched_setattr": 314,
        "migrate_pages": 256, "move_pages": 279, "socket": 41, "shmget": 29, "msgget": 68, "semget": 64,
        "add_key": 248, "request_key": 249, "keyctl": 250, "io_uring_setup": 425, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323,
    }),
    "aarch64": (0xC00000B7, {
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438, "process_madvise": 440,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "prlimit64": 261,
        "sched_setaffinity": 122, "sched_setscheduler": 119, "sched_setparam": 118, "sched_setattr": 274,
        "migrate_pages": 238, "move_pages": 239, "socket": 198, "shmget": 194, "msgget": 186, "semget": 190,
        "add_key": 217, "request_key": 218, "keyctl": 219, "io_uring_setup": 425, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282,
    }),
}
_DENY_ALWAYS = ("pidfd_send_signal", "pidfd_getfd", "process_madvise", "ptrace", "process_vm_readv",
                "process_vm_writev", "shmget", "msgget", "semget", "add_key", "request_key", "keyctl",
                "io_uring_setup", "bpf", "perf_event_open", "userfaultfd")
# Calls whose first argument is a process id: refused when it names a protected process.
_PID_FIRST = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "prlimit64",
              "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr", "migrate_pages",
              "move_pages")
_NET_FAMILIES = (socket.AF_INET, socket.AF_INET6, getattr(socket, "AF_PACKET", 17))

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_X32_BIT = 0x40000000


def seccomp_program(protected: list[int], arch: str | None = None) -> bytes | None:
    """A classic-BPF seccomp filter as bytes (``struct sock_filter[]``), or None on an unknown CPU."""
    arch = arch or platform.machine()
    if arch not in _ARCHES:
        return None
    audit_arch, nr = _ARCHES[arch]
    values = sorted({p & 0xFFFFFFFF for p in protected} | {0xFFFFFFFF})  # -1 is "every process"
    prog: list[tuple[int, int, int, int | str]] = []  # (code, jt, jf, k); jt/jf may be "DENY"

    def op(code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        prog.append((code, jt, jf, k))  # type: ignore[arg-type]

    op(_LD_W_ABS, 4)                                  # seccomp_data.arch
    op(_JEQ_K, audit_arch, 1, 0)
    op(_RET_K, _RET_ERRNO | errno.EPERM)              # a foreign ABI (i386 on x86_64): refuse everything
    op(_LD_W_ABS, 0)                                  # seccomp_data.nr
    if arch == "x86_64":
        op(_JGE_K, _X32_BIT, "DENY", 0)               # the x32 ABI
    for name in _DENY_ALWAYS:
        op(_JEQ_K, nr[name], "DENY", 0)
    for name in _PID_FIRST:
        op(_JEQ_K, nr[name], 0, len(values) + 2)
        op(_LD_W_ABS, 16)                             # low 32 bits of args[0]: the kernel reads a pid_t
        for v in values:
            op(_JEQ_K, v, "DENY", 0)
        op(_LD_W_ABS, 0)
    op(_JEQ_K, nr["socket"], 0, len(_NET_FAMILIES) + 2)
    op(_LD_W_ABS, 16)
    for family in _NET_FAMILIES:
        op(_JEQ_K, family, "DENY", 0)
    op(_LD_W_ABS, 0)
    op(_RET_K, _RET_ALLOW)
    deny = len(prog)
    op(_RET_K, _RET_ERRNO | errno.EPERM)
    out = []
    for i, (code, jt, jf, k) in enumerate(prog):
        jt = deny - i - 1 if jt == "DENY" else jt
        jf = deny - i - 1 if jf == "DENY" else jf
        if not (0 <= int(jt) < 256 and 0 <= int(jf) < 256):
            raise ValueError("seccomp program too long for 8-bit jumps")
        out.append(struct.pack("HBBI", code, int(jt), int(jf), int(k)))
    return b"".join(out)


def install_seccomp(protected: list[int]) -> bool:
    """Install the filter on this process (inherited by its threads and children). False if not possible."""
    program = seccomp_program(protected)
    if program is None:
        return False
    count = len(program) // 8
    buf = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(count, ctypes.cast(buf, ctypes.c_void_p))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    return _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.cast(ctypes.pointer(fprog), ctypes.c_void_p)) == 0


def _seccomp_works(me: int) -> bool:
    """Whether a worker will get the filter here: a throwaway child installs it and exits."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if install_seccomp([me]) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


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

def become_worker(sock: socket.socket, config: dict[str, Any], files: dict[str, Any], protected: list[int]) -> None:
    """In the forked child: own session, limits and filters, a private copy of the files, then serve requests."""
    os.setsid()
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for name in ("SIGINT", "SIGTERM", "SIGCHLD", "SIGPIPE"):
        signal.signal(getattr(signal, name), signal.SIG_DFL if name != "SIGPIPE" else signal.SIG_IGN)
    try:  # if memory runs out, the worker is the one the kernel picks, never the zygote
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("800")
    except OSError:
        pass
    folder = Path(config["workdir"])
    write_files(folder, files)
    for name, value in config.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if config.get("seccomp", True):
        install_seccomp(protected)
    import torch

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    from .child import run

    run(sock, str(folder), int(config.get("output_bytes", 20000)), protected=protected)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    import numpy  # noqa: F401 - paid once here, inherited by every child
    import torch  # noqa: F401
    import torch.nn  # noqa: F401
    import torch.nn.functional  # noqa: F401

    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - optional for submissions
        pass
    from . import probes  # noqa: F401
    from . import protocol

    me = os.getpid()
    protocol.send(control, {"ready": True, "pid": me, "seccomp": _seccomp_works(me)})
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
            pid = os.fork()
            if pid == 0:
                try:
                    control.close()
                    become_worker(sock, msg["config"], msg.get("files", {}), protected)
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
