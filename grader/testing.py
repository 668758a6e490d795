"""The test-author API: what a hidden or audit suite imports.

A hidden test reads like ordinary pytest::

    @grade("ResidualBlock", "params")
    def test_projection_params(student, reference):
        \"\"\"ResidualBlock(64, 128, stride=2) has the lesson's parameter count.\"\"\"
        got = student.build("ResidualBlock", 64, 128, 2).probe("param_count")
        want = reference.build("ResidualBlock", 64, 128, 2).probe("param_count")
        check_equal(got["total"], want["total"], "parameter count", hint=...)

``student`` sends each probe to the sandboxed worker; ``reference`` runs the same
probe (``grader.worker.probes``) here, on the reference solution, memoised for
the whole run. Points come from the assignment's rubric, never from the test.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import sys
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from grader.grading.client import SubmissionError, WorkerClient, current_test
from grader.grading.isolation import Isolation
from grader.spec import AssignmentSpec

__all__ = ["grade", "Mistake", "SubmissionError", "check", "check_equal", "commas", "Built",
           "StudentImplementation", "ReferenceImplementation"]


def grade(target: str, category: str, *, timeout: float | None = None) -> pytest.MarkDecorator:
    """Tag a test with the class or function under test and one rubric category."""
    return pytest.mark.grade(target=target, category=category, timeout=timeout)


class Mistake(AssertionError):
    """A check that failed: what was expected, what was found, and the likely cause."""

    def __init__(self, message: str, *, expected: Any = None, found: Any = None, hint: str | None = None,
                 data: dict[str, Any] | None = None, cause: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expected = None if expected is None else str(expected)
        self.found = None if found is None else str(found)
        self.hint = hint
        self.data = data or {}
        # A stable name for the root cause ("ResidualBlock.relu_before_add"): failures that share it are one mistake.
        self.cause = cause
        # How to correct it, possibly solution code: students see it only under the "full" feedback policy.
        self.fix = fix


def check(condition: bool, message: str, *, expected: Any = None, found: Any = None, hint: str | None = None,
          cause: str | None = None, fix: str | None = None) -> None:
    if not condition:
        raise Mistake(message, expected=expected, found=found, hint=hint, cause=cause, fix=fix)


def check_equal(found: Any, expected: Any, what: str, *, hint: str | None = None) -> None:
    if found != expected:
        show = commas if isinstance(expected, int) and not isinstance(expected, bool) else str
        raise Mistake(f"{what} differs", expected=show(expected), found=show(found), hint=hint)


def cuda_not_available(student: Implementation, reason: str = "") -> None:
    """The worker answered that CUDA is not available: a skip only where the run gave it no GPU.

    On a run whose sandbox has the GPU, the student's process saying otherwise
    (``torch.cuda.is_available`` patched, ``CUDA_VISIBLE_DEVICES`` changed) is
    that test's failure, so a GPU test cannot be hidden to move its points.
    """
    if getattr(student, "gpu", False):
        raise Mistake("Your code reported that CUDA is not available, but this run gives it the GPU",
                      expected="CUDA available", found=reason or "not available",
                      hint="Leave torch.cuda and CUDA_VISIBLE_DEVICES alone: choose the device with "
                           "torch.device('cuda' if torch.cuda.is_available() else 'cpu').")
    pytest.skip(f"the grading sandbox was started without GPU access{f' ({reason})' if reason else ''}")


def commas(n: int | float) -> str:
    return f"{n:,}"


def _call_text(target: str, args: tuple, kwargs: dict) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{target}({', '.join(parts)})"


@dataclass(frozen=True)
class Built:
    """A recipe (target and constructor arguments) that probes run against."""

    impl: "Implementation"
    target: str
    args: tuple
    kwargs: dict
    construct: bool = True
    # Dependencies replaced by the course's stand-ins while it is built (see grader.grading.isolation).
    stand_ins: tuple[str, ...] = ()

    def probe(self, name: str, *, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        known = self.impl.probe_names()
        if known is not None and name not in known:
            raise KeyError(f"no probe named {name!r}")
        return self.impl.run_probe(self, name, params, timeout)

    def __str__(self) -> str:
        return _call_text(self.target, self.args, self.kwargs)


@functools.lru_cache(maxsize=None)
def cuda_available() -> bool:
    """Whether this machine has a CUDA GPU torch can use: for a test that needs one to skip itself without.
    Asked without importing torch here where there is none, and without starting CUDA in this process."""
    from grader.grading.gpu import cuda_usable

    return cuda_usable()


class Implementation:
    spec: AssignmentSpec
    isolation: Isolation | None = None

    def probe_names(self) -> frozenset[str] | None:
        """The probe library's names, where this process has imported it (None: checked where it is used).

        The grading process imports the library (and torch with it, about a second) only to compute a
        reference result that is neither memoised nor cached.
        """
        library = sys.modules.get("grader.worker.probes")
        return frozenset(library.PROBES) if library is not None else None

    def _built(self, target: str, args: tuple, kwargs: dict, construct: bool = True) -> Built:
        stand_ins = self.isolation.stand_ins_for(target, args, kwargs, construct) if self.isolation else ()
        return Built(self, target, args, kwargs, construct=construct, stand_ins=stand_ins)

    def build(self, target: str, *args: Any, **kwargs: Any) -> Built:
        return self._built(target, args, kwargs)

    def function(self, target: str) -> Built:
        """The function object itself, for probes that call it with data they make."""
        return self._built(target, (), {}, construct=False)

    def call(self, target: str, *args: Any, **kwargs: Any) -> Any:
        """Call a function target and return its value as plain data."""
        return self._built(target, args, kwargs).probe("call_function")["value"]

    def run_probe(self, built: Built, name: str, params: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        raise NotImplementedError


# Probes that only construct the target: a forward that hangs or crashes does not stop them.
BUILD_ONLY_PROBES = frozenset({"describe", "param_count", "construct"})
# Failures that cost a request's whole time or a worker: charged once per target, then remembered.
FATAL_KINDS = frozenset({"timeout", "memory", "crash"})


class StudentImplementation(Implementation):
    """The submission's side: probes go to the sandboxed worker.

    Time is charged once: when a target's probe times out, hits the memory limit or
    crashes the worker, later probes of that target fail at once with the same
    diagnosis instead of paying the limit again (one timeout per class, not per
    test). A hang in forward still lets the probes that only construct it run;
    a hang in the constructor stops every probe of that target.
    """

    def __init__(self, client: WorkerClient, spec: AssignmentSpec, default_timeout: float,
                 dry_run_input: Callable[[str, tuple, dict, bool], list[int] | None] | None = None,
                 isolation: Isolation | None = None) -> None:
        self.client = client
        self.spec = spec
        self.default_timeout = default_timeout
        self.stdout: list[str] = []
        # (target, "build" or "forward") -> the first fatal failure, and the test it happened in
        self.fatal: dict[tuple[str, str], tuple[SubmissionError, str | None]] = {}
        # What the current test should tell the student beside its verdict (stand-ins used, lazy layers materialised).
        self.notes: list[str] = []
        self.dry_run_input = dry_run_input
        self.isolation = isolation
        if isolation is not None:
            isolation.instantiates_stand_ins = self.instantiates_stand_ins

    def _remembered(self, target: str, probe: str) -> SubmissionError | None:
        phases = ("build",) if probe in BUILD_ONLY_PROBES else ("build", "forward")
        for phase in phases:
            if (target, phase) in self.fatal:
                first, test = self.fatal[(target, phase)]
                where = f" in the test '{test}'" if test else ""
                return SubmissionError(first.kind, f"{first.message} (first seen{where}; not run again, "
                                       "so the time limit is charged once)", first.traceback)
        return None

    def probe_names(self) -> frozenset[str] | None:
        """Also, without the library here: the names the sandbox's zygote imported (it says them when ready)."""
        return super().probe_names() or getattr(self.client.sandbox, "probe_names", None) or None

    @property
    def gpu(self) -> bool:
        """Whether this run gave the student's sandbox the GPU (decided on the trusted side, never by the worker)."""
        return bool(self.client.sandbox.config.gpu)

    def _probe(self, built: Built, name: str, params: dict[str, Any], timeout: float | None,
               stand_ins: tuple[str, ...]) -> dict[str, Any]:
        target = self.spec.target(built.target)
        remembered = self._remembered(target.name, name)
        if remembered is not None:
            raise remembered
        shape = self.dry_run_input(built.target, built.args, built.kwargs, built.construct) if self.dry_run_input else None
        request = self.isolation.request(stand_ins) if self.isolation else None
        try:
            reply = self.client.probe(name, target.file, target.name, target.kind, list(built.args),
                                      dict(built.kwargs), params, timeout or self.default_timeout,
                                      construct=built.construct, stand_ins=request, dry_run_input=shape)
        except SubmissionError as e:
            if e.kind in FATAL_KINDS:
                phase = "build" if name in BUILD_ONLY_PROBES or not built.construct else "forward"
                self.fatal.setdefault((target.name, phase), (e, current_test()))
            raise
        if reply["stdout"]:
            self.stdout.append(reply["stdout"])
        for materialised in reply.get("materialised", []):
            self._note(f"Your {built.target} has lazy layers: they were given their sizes by one forward pass on a "
                       f"zero input of shape {tuple(materialised)} (the documented input) before anything was measured.")
        return reply

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def run_probe(self, built: Built, name: str, params: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        reply = self._probe(built, name, params, timeout, built.stand_ins)
        if built.stand_ins and self.isolation is not None:
            self._note(self.isolation.note(built.stand_ins))
        return reply["result"]

    def instantiates_stand_ins(self, target: str, args: tuple, kwargs: dict, stand_ins: tuple[str, ...]) -> bool:
        """Does building ``target`` with ``stand_ins`` in place create one (and not fail)?"""
        try:
            reply = self._probe(Built(self, target, args, kwargs), "construct", {}, None, stand_ins)
        except SubmissionError:
            return False
        return reply.get("stand_ins_built", 0) > 0


class ReferenceImplementation(Implementation):
    """Runs probes on the reference solution in this (trusted) process, memoised."""

    def __init__(self, spec: AssignmentSpec, modules: dict[str, Any] | Callable[[], dict[str, Any]],
                 stand_in_source: str | None = None) -> None:
        """``modules``: the reference's modules, or a function that loads them when a result is first
        computed (with every result already in the memo, e.g. from the cache on disk, they are never
        imported, nor what they import)."""
        self.spec = spec
        self._modules = modules if isinstance(modules, dict) else None
        self._load_modules = None if isinstance(modules, dict) else modules
        self.memo: dict[str, Any] = {}
        # How many results this process computed (not found in the memo, nor in the cache on disk).
        self.computed = 0
        self.stand_in_source = stand_in_source
        # Set for the submission being graded (the reference's builds get the same stand-ins as the student's).
        self.isolation: Isolation | None = None

    @property
    def modules(self) -> dict[str, Any]:
        if self._modules is None:
            self._modules = self._load_modules()
        return self._modules

    def dry_run_input(self, target: str, args: tuple, kwargs: dict, construct: bool = True) -> list[int] | None:
        """The target's documented input (``dry_run_input`` in the spec) for these constructor arguments."""
        spec_target = self.spec.target(target)
        if not construct or spec_target.dry_run_input is None:
            return None
        key = "dry_run_input|" + json.dumps([target, args, kwargs], sort_keys=True, default=repr)
        if key not in self.memo:
            self.memo[key] = self._dry_run_input(spec_target, target, args, kwargs)
            self.computed += 1
        shape = self.memo[key]
        return list(shape) if shape is not None else None

    def _dry_run_input(self, spec_target: Any, target: str, args: tuple, kwargs: dict) -> list[int] | None:
        try:
            bound = inspect.signature(getattr(self.modules[spec_target.file], target)).bind(*args, **kwargs)
        except (TypeError, ValueError, AttributeError, KeyError):
            return None
        bound.apply_defaults()
        shape = [bound.arguments.get(d) if isinstance(d, str) else d for d in spec_target.dry_run_input]
        return shape if all(isinstance(n, int) and n > 0 for n in shape) else None

    def probe_input(self, input_shape: list[int], seed: int = 0) -> Any:
        """The input a probe makes for ``input_shape`` (``make_input``: float64, from a fixed seed), computed
        here once per suite version and kept with the reference's results: a suite compares a submission's
        output with this copy, never with the input the worker reports."""
        key = json.dumps(["probe input", list(input_shape), seed])
        if key not in self.memo:
            from grader.worker.probes import make_input

            self.memo[key] = _plain_copy({"input": make_input(list(input_shape), seed).numpy()})
            self.computed += 1
        return self.memo[key]["input"]

    def run_probe(self, built: Built, name: str, params: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        key = json.dumps([built.target, built.args, built.kwargs, built.construct, built.stand_ins, name, params],
                         sort_keys=True, default=repr)
        if key not in self.memo:
            import torch

            from grader.worker import probes as probe_library

            if name not in probe_library.PROBES:
                raise KeyError(f"no probe named {name!r}")
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # the reference runs once per run; never compete with the sandbox for cores
            try:
                with torch.random.fork_rng(), self._substitution(built.stand_ins):
                    target = self.spec.target(built.target)
                    obj = getattr(self.modules[target.file], target.name)
                    build: Callable[[], Any] = (lambda: obj(*built.args, **built.kwargs)) if built.construct else (lambda: obj)
                    build = probe_library.materialising(build, self.dry_run_input(built.target, built.args, built.kwargs,
                                                                                  built.construct), [])
                    result = probe_library.PROBES[name](build, **params)
            finally:
                torch.set_num_threads(threads)
            self.memo[key] = _plain_copy(result)
            self.computed += 1
        return self.memo[key]

    def _substitution(self, stand_ins: tuple[str, ...]) -> Any:
        if not stand_ins or self.stand_in_source is None:
            return contextlib.nullcontext()
        from grader.worker import standins

        originals = {name: getattr(self.modules[self.spec.target(name).file], name) for name in stand_ins}
        return standins.Substitution(self.modules.values(), originals, standins.load(self.stand_in_source))


def _plain_copy(result: dict[str, Any]) -> dict[str, Any]:
    """The reference's result as the student's arrives: through the wire format."""
    from grader.worker import protocol

    return protocol.round_trip(result)
