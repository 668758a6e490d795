"""Cgroups for one sandbox: a pids cgroup bounds its process count, a memory cgroup its memory.

In: the limits, when the sandbox starts. Out: the cgroups (v1, made where this process
may make them: root, under its own cgroup), their memory use, and their removal, with
whatever still runs there, when the sandbox closes; ``None`` where none can be made, so
the sandbox falls back to rlimits and says so.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


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
