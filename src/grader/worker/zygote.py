"""The pre-imported parent of every worker in one sandbox.

It pays for ``import torch`` once, then forks a fresh child per submission (and
again after a child is killed). It never runs a tensor operation itself, so no
thread pool exists at fork time, and it never initialises CUDA before a fork.

Control requests arrive on the socket whose descriptor is ``argv[1]``:
``spawn`` (with a request socket passed by SCM_RIGHTS and the submission's files
as blobs), ``kill`` (end every process but this one, wipe the work folders) and
``exit``.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(option, value, 0, 0, 0)


def descendants(root: int) -> list[int]:
    """Every process whose parent chain leads to ``root`` (orphans come back to us as subreaper)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found += kids
        frontier += kids
    return found


def kill_all_but_me() -> int:
    me, killed = os.getpid(), 0
    for _ in range(50):
        pids = descendants(me)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        reap()
    return killed


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


def wipe(folder: Path) -> None:
    for item in folder.iterdir() if folder.exists() else []:
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)


def write_files(folder: Path, files: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = (folder / rel).resolve()
        if folder.resolve() not in path.parents:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.tobytes())


def become_worker(sock: socket.socket, config: dict[str, Any], files: dict[str, Any]) -> None:
    """In the forked child: own session, limits, a private copy of the files, then serve requests."""
    os.setsid()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for name in ("SIGINT", "SIGTERM", "SIGCHLD"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    folder = Path(config["workdir"])
    write_files(folder, files)
    limits = config.get("rlimits", {})
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    import torch

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    from .child import run

    run(sock, str(folder), int(config.get("output_bytes", 20000)))


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
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

    protocol.send(control, {"ready": True, "pid": os.getpid()})
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(control, 1, 1)
            msg = protocol.recv(control)
        except (protocol.ChannelClosed, OSError, ConnectionError):
            kill_all_but_me()
            return
        op = msg.get("op")
        if op == "spawn":
            sock = socket.socket(fileno=fds[0])
            pid = os.fork()
            if pid == 0:
                try:
                    control.close()
                    become_worker(sock, msg["config"], msg.get("files", {}))
                finally:
                    os._exit(0)
            sock.close()
            protocol.send(control, {"pid": pid})
        elif op == "kill":
            for fd in fds:
                os.close(fd)
            killed = kill_all_but_me()
            for folder in msg.get("wipe", []):
                wipe(Path(folder))
            protocol.send(control, {"killed": killed})
        elif op == "exit":
            kill_all_but_me()
            protocol.send(control, {"bye": True})
            return
        else:
            for fd in fds:
                os.close(fd)
            protocol.send(control, {"error": f"unknown op {op!r}"})
        reap()


if __name__ == "__main__":
    main()
