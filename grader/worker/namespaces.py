"""A fresh set of namespaces for one worker, entered after the zygote forks and before student code.

The zygote forks a small *keeper* for each submission. The keeper unshares a
new user, mount, IPC, PID, network and UTS namespace, maps its own user id
into the new user namespace, and forks the *worker*, which is process 1 of the
new PID namespace. The worker then, still before it reads the submission:

- mounts a fresh ``/proc`` (it shows only this submission's processes),
  fresh sized tmpfs folders on ``/tmp``, ``/dev/shm`` and the work folder
  (nothing a previous student wrote is there, and nothing it writes outlives
  it: the mounts vanish with the namespace);
- forbids further user namespaces in its own (``max_user_namespaces`` 0) and
  drops every capability it had in the new user namespace, so it can neither
  unmount what covers the zygote's folders nor build new namespaces.

When the worker ends, the kernel kills every process left in its PID namespace:
a daemon a student started cannot outlive the submission. The IPC namespace
(SysV objects, POSIX message queues) and the network namespace (loopback,
abstract Unix sockets) are the submission's alone.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
FRESH = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(OSError):
    """A step of entering fresh namespaces failed; the worker must not run student code."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise NamespaceError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None), f"mount {fstype or source} on {target}")


def enter_keeper() -> None:
    """In the keeper: new namespaces, with this process's user and group ids mapped to themselves.

    The process must be dumpable to write its own id maps (the zygote is not)."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    _check(_libc.unshare(FRESH), "unshare")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _cap_header_and_data() -> tuple[ctypes.Array, ctypes.Array]:
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable} sets, all empty
    return header, data


def drop_capabilities() -> None:
    """Give up every capability: bounding set, ambient set, then effective, permitted and inheritable."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
            _check(-1, f"dropping capability {cap}")
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = _cap_header_and_data()
    _check(_libc.capget(header, data), "capget")
    header, data = _cap_header_and_data()
    _check(_libc.capset(header, data), "capset")
    header, data = _cap_header_and_data()
    _check(_libc.capget(header, data), "capget")
    if any(data):
        raise NamespaceError(1, "capabilities are still held after dropping them")


def set_up_worker(private_folders: list[str], size_bytes: int, host_proc: str | None = None,
                  keep: list[str] | tuple[str, ...] = ()) -> str:
    """In the worker (process 1 of the new PID namespace): fresh /proc and private folders, then no privileges.

    Returns how ``/proc`` was provided: ``"own"`` (a procfs of this namespace)
    or ``"hidden"`` (the host hides its procfs from nested namespaces, so an
    empty read-only folder covers it). Raises ``NamespaceError`` if anything
    else fails: the caller must then exit without running student code.
    """
    if os.getpid() != 1:
        raise NamespaceError(1, "the worker is not process 1 of a new PID namespace")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    proc = "hidden"
    for flags in (0, MS_RDONLY):  # read-only where the procfs that makes it visible is read-only
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | flags, None)
            proc = "own"
            break
        except NamespaceError:
            continue
    if proc == "hidden":
        _mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4096,mode=0555")
    if host_proc and os.path.isdir(host_proc):
        # The procfs the sandbox keeps only so that the mount above is allowed: covered, never seen.
        _mount("tmpfs", host_proc, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4096,mode=0555")
        if os.listdir(host_proc):
            raise NamespaceError(1, "the host's /proc is still visible")
    # What the worker needs from under a private folder (a Python environment cloned into /tmp), held open
    # so that it can be bound again on top of the fresh folder that is about to cover it.
    held = [(path, os.open(path, os.O_PATH | os.O_CLOEXEC)) for path in keep if os.path.lexists(path)]
    for folder in private_folders:
        mode = "1777" if folder in ("/tmp", "/dev/shm") else "0755"
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_bytes},mode={mode}")
    for path, fd in held:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "a").close()
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        os.close(fd)
    if proc == "own":
        if int(os.readlink("/proc/self")) != 1:
            raise NamespaceError(1, "the fresh /proc does not show this namespace")
        try:  # no nested user namespaces (the seccomp filter refuses them too); fails on a read-only /proc
            Path("/proc/sys/user/max_user_namespaces").write_text("0")
        except OSError:
            pass
    drop_capabilities()
    return proc
