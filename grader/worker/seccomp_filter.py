"""The worker's seccomp filter, built with libseccomp through its Python binding (``pyseccomp``).

libseccomp resolves system call numbers for the machine it runs on, checks the
architecture of every call (a foreign ABI, such as 32-bit calls on x86_64, is
refused) and compiles the rules to BPF, so no filter program is written by
hand here. The filter is a deny list aimed at the grader's processes and at
what per-student namespaces do not isolate; everything else is allowed.

Refused with ``EPERM``, whatever process makes the call:

- every way to signal or trace another process that could be the grader's:
  the ``kill`` family and ``pidfd_open`` aimed at a protected process (its
  pid, its group as ``-pgid``, or ``-1`` for "every process"), ``pidfd_send_signal``,
  ``pidfd_getfd``, ``ptrace``, ``process_vm_readv``/``writev``,
  ``process_madvise``, ``kcmp``; the asynchronous-I/O owner that makes the
  kernel signal a process on I/O: ``fcntl(F_SETOWN / F_SETOWN_EX / F_SETSIG)``
  and ``ioctl(FIOSETOWN / SIOCSPGRP)``; limits and scheduling of a protected
  process (``prlimit64``, ``sched_set*``, ``setpriority``, ``migrate_pages``,
  ``move_pages``);
- IPv4, IPv6 and packet sockets, and raw sockets of any family;
- SysV IPC, POSIX message queues, kernel keyrings, io_uring, bpf, perf events,
  userfaultfd;
- new namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag);
  ``clone3`` answers ``ENOSYS``, its arguments being out of a filter's reach,
  so that the C library falls back to ``clone``.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

try:  # the binding loads the system's libseccomp.so.2 when imported
    import pyseccomp as _seccomp
    _MISSING: str | None = None
except Exception as e:  # noqa: BLE001 - ImportError, or OSError/RuntimeError when the C library is absent
    _seccomp = None
    _MISSING = f"libseccomp unavailable ({type(e).__name__}: {str(e)[:120]})"

_ALWAYS = ("ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp",
           "pidfd_send_signal", "pidfd_getfd",
           "shmget", "shmat", "msgget", "msgsnd", "msgrcv", "semget", "semop", "semtimedop",
           "mq_open", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_unlink",
           "add_key", "request_key", "keyctl", "io_uring_setup", "io_uring_enter", "io_uring_register",
           "bpf", "perf_event_open", "userfaultfd", "unshare", "setns")
# Calls whose first argument names a process.
_PID_FIRST = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "prlimit64",
              "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr", "migrate_pages",
              "move_pages")
F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902
PRIO_PROCESS = 0
SOCK_TYPE_MASK = 0xF
CLONE_NAMESPACES = (0x00020000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x02000000, 0x00000080)
_NET_FAMILIES = (socket.AF_INET, socket.AF_INET6, getattr(socket, "AF_PACKET", 17))
_LOW32 = 0xFFFFFFFF


def missing() -> str | None:
    """Why no filter can be built here, or None when libseccomp is usable."""
    return _MISSING


def _rule(flt: Any, action: int, name: str, *args: Any) -> bool:
    try:
        flt.add_rule(action, name, *args)
        return True
    except (OSError, ValueError, RuntimeError):
        return False  # a call this kernel's architecture does not have (fcntl64 on x86_64)


def build(protected: list[int]) -> Any:
    """The filter (a ``pyseccomp.SyscallFilter``, not yet loaded) that protects ``protected`` pids."""
    if _seccomp is None:
        raise RuntimeError(_MISSING)
    s = _seccomp
    deny = s.ERRNO(errno.EPERM)
    flt = s.SyscallFilter(s.ALLOW)

    def arg32(index: int, value: int) -> Any:  # a C int argument: compare its low 32 bits only
        return s.Arg(index, s.MASKED_EQ, _LOW32, value & _LOW32)

    for name in _ALWAYS:
        _rule(flt, deny, name)
    _rule(flt, s.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NAMESPACES:
        _rule(flt, deny, "clone", s.Arg(0, s.MASKED_EQ, flag, flag))
    targets = sorted({p & _LOW32 for p in protected} | {_LOW32})  # -1 is "every process"
    for name in _PID_FIRST:
        for pid in targets:
            _rule(flt, deny, name, arg32(0, pid))
    for pid in targets:
        _rule(flt, deny, "setpriority", arg32(0, PRIO_PROCESS), arg32(1, pid))
    for name in ("fcntl", "fcntl64"):
        for command in (F_SETOWN, F_SETOWN_EX, F_SETSIG):
            _rule(flt, deny, name, arg32(1, command))
    for request in (FIOSETOWN, SIOCSPGRP):
        _rule(flt, deny, "ioctl", arg32(1, request))
    for family in _NET_FAMILIES:
        _rule(flt, deny, "socket", arg32(0, family))
    _rule(flt, deny, "socket", s.Arg(1, s.MASKED_EQ, SOCK_TYPE_MASK, socket.SOCK_RAW))
    return flt


def install(protected: list[int]) -> bool:
    """Load the filter into this process (its threads and children inherit it); False when not possible."""
    if _seccomp is None:
        return False
    try:
        build(protected).load()
        return True
    except (OSError, RuntimeError, ValueError):
        return False
