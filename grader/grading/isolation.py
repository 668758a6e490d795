"""Each mistake charged once: which of a test's dependencies are replaced by the course's stand-ins.

The suite runs a target's dependencies' tests first (the plugin orders them by
``AssignmentSpec.dependency_order``) and records which targets failed. Under
the ``isolate`` policy, a test of a network then builds the student's network
and the reference's with every failed dependency replaced by the course's
stand-in of the same name, so the comparison sees only the network's own wiring.

A student's build that creates no stand-in (the network uses a block of another
name, or the build fails once the stand-in is in place) is judged with its own
blocks, as under ``cumulative``: the stand-in is then left out on both sides.
"""

from __future__ import annotations

from typing import Any, Callable

from grader.spec import AssignmentSpec


class Isolation:
    """Per submission: the targets that failed their own tests, and what the current test may replace."""

    def __init__(self, spec: AssignmentSpec, stand_in_source: str | None) -> None:
        self.spec = spec
        self.source = stand_in_source
        self.failed: set[str] = set()
        self.current: str | None = None
        # (target, args, kwargs, construct, stand-ins) -> does the student's build create a stand-in?
        self._instantiates: dict[str, bool] = {}
        self.instantiates_stand_ins: Callable[[str, tuple, dict, tuple[str, ...]], bool] | None = None

    @property
    def active(self) -> bool:
        return self.spec.dependencies == "isolate" and self.source is not None

    def begin(self, target: str) -> None:
        self.current = target

    def record(self, target: str, failed: bool) -> None:
        if failed:
            self.failed.add(target)

    def wanted(self) -> tuple[str, ...]:
        """The current test's dependencies (direct or not) that failed their own tests."""
        if not self.active or self.current is None:
            return ()
        return tuple(d for d in self.spec.dependencies_of(self.current) if d in self.failed)

    def stand_ins_for(self, target: str, args: tuple, kwargs: dict, construct: bool) -> tuple[str, ...]:
        """The stand-ins a build of ``target(*args, **kwargs)`` gets in the current test (the same on both sides)."""
        wanted = self.wanted()
        if not wanted or not construct or self.instantiates_stand_ins is None:
            return wanted
        key = repr((target, args, sorted(kwargs.items()), wanted))
        if key not in self._instantiates:
            self._instantiates[key] = self.instantiates_stand_ins(target, args, kwargs, wanted)
        return wanted if self._instantiates[key] else ()

    def request(self, stand_ins: tuple[str, ...]) -> dict[str, Any] | None:
        """What a worker needs to put ``stand_ins`` in place: the course's source and each block's file."""
        if not stand_ins or self.source is None:
            return None
        return {"source": self.source, "replace": {name: self.spec.target(name).file for name in stand_ins}}

    def note(self, stand_ins: tuple[str, ...]) -> str:
        names = ", ".join(stand_ins)
        return (f"Judged with the course's stand-in for {names} (it failed its own tests), so that this test "
                f"checks only {self.current}'s own wiring; fix {names} first.")
