"""Grading one submission: intake, sandboxed worker, hidden suite, results.

``GradingSession`` holds what a class run pays for once: the loaded reference,
its memoised probe results, and the sandbox zygote with torch imported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import grader
from grader.grading.bounds import bounded
from grader.grading import lanes as lanes_module
from grader.grading.client import WorkerClient
from grader.intake.submission import read_submission
from grader.grading.isolation import Isolation
from grader.grading.mistakes import diagnose
from grader.intake.notebook.take import rules_for
from grader.grading.plugin import GradingPlugin, SuiteError, assign_points
from grader.grading.refcache import ReferenceCache
from grader.grading.reference import load_reference
from grader.results import Flag, Outcome, Problem, SubmissionResult, TestResult
from grader.grading.sandbox import Sandbox, SandboxConfig
from grader.spec import AssignmentSpec
from grader.testing import ReferenceImplementation, StudentImplementation

SUITE_INI = Path(__file__).resolve().parent / "suite.ini"
LANE_GRACE_S = 120.0  # how long past the submission's deadline a lane's process may take (its last request's limit)
SAVE_EVERY_S = 30.0   # how often, at most, new reference results are written to the cache before the session closes


class GradingSession:
    def __init__(self, spec: AssignmentSpec, threads: int = 1, gpu: bool = False,
                 cache_folder: Path | None = None, sandbox: Sandbox | None = None,
                 lanes: list[Sandbox] | None = None) -> None:
        """``sandbox``: one already started for this session (``Sandbox(SandboxConfig.for_spec(spec, threads,
        gpu), wait=False)``, launched before the imports this needs so that both proceed at once).

        ``lanes``: more sandboxes of that configuration, for a submission graded alone on a machine with
        cores to spare: each grades part of the suite at the same time (``grader.grading.lanes``)."""
        try:
            self._set_up(spec, threads, gpu, cache_folder, sandbox, list(lanes or []))
        except BaseException:
            for box in [sandbox, *(lanes or [])]:
                if box is not None:
                    box.close()
            raise

    def _set_up(self, spec: AssignmentSpec, threads: int, gpu: bool, cache_folder: Path | None,
                sandbox: Sandbox | None, lanes: list[Sandbox]) -> None:
        self.spec = spec
        self.stand_in_source = spec.stand_ins.read_text(encoding="utf-8") if spec.stand_ins else None
        # The reference's probe results, computed once per suite version and kept on disk (grader.refcache).
        self.reference_cache = ReferenceCache(spec, gpu=gpu, folder=cache_folder)
        cached = self.reference_cache.load()
        # With results on disk (computed from this very reference, which imported then) the reference, and
        # torchvision, which it imports, are loaded only when a probe asks for a result not there yet; without,
        # at once, so that a reference that does not import stops the session before any grading.
        modules = (lambda: load_reference(spec.reference, spec.files)) if cached \
            else load_reference(spec.reference, spec.files)
        self.reference = ReferenceImplementation(spec, modules, self.stand_in_source)
        self.reference.memo.update(cached)
        self._saved_at = time.monotonic()
        self.sandbox_config = SandboxConfig.for_spec(spec, threads=threads, gpu=gpu)
        if any(box is not None and box.config != self.sandbox_config for box in [sandbox, *lanes]):
            raise ValueError("a sandbox given was started with another configuration than this session's")
        self._sandbox: Sandbox | None = sandbox
        self._lanes = lanes
        self._costs_file = lanes_module.costs_file(self.reference_cache.path)
        self._target_costs = lanes_module.load_costs(self._costs_file)
        self._costs_noted = False

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is not None:
            self._sandbox.ready()
        if self._sandbox is None or not self._sandbox.alive():
            if self._sandbox is not None:
                self._sandbox.close()
            self._sandbox = Sandbox(self.sandbox_config)
        return self._sandbox

    @property
    def sandboxes(self) -> list[Sandbox]:
        """The sandboxes this session has started (its own and its lanes'), without starting any."""
        return [box for box in [self._sandbox, *self._lanes] if box is not None]

    def close(self) -> None:
        self._save_reference_results()
        for box in self.sandboxes:
            box.close()
        self._sandbox, self._lanes = None, []

    def _lane_sandbox(self, i: int) -> Sandbox:
        """The i-th extra lane's sandbox, started again if its zygote has ended."""
        box = self._lanes[i].ready()
        if not box.alive():
            box.close()
            box = self._lanes[i] = Sandbox(self.sandbox_config)
        return box

    def _save_reference_results(self, complete: bool = False) -> None:
        self._saved_at = time.monotonic()
        try:
            self.reference_cache.save(self.reference.memo, complete=complete)
        except Exception:  # noqa: BLE001 - the cache only saves time: a failure to write it never fails grading
            pass

    def __enter__(self) -> "GradingSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def grade(self, folder: Path, student: str | None = None, targets: set[str] | None = None) -> SubmissionResult:
        """Grade ``folder``; with ``targets``, only the tests of those classes run (the suite audit uses it)."""
        started = time.monotonic()
        spec = self.spec
        intake = read_submission(folder, spec.files, rules_for(spec))
        deadline = started + spec.limits.submission_timeout_s
        sandbox = self.sandbox
        if targets is None and self._lanes and not self.sandbox_config.gpu:
            part = self._run_in_lanes(intake.files, deadline)
        else:
            part = self._run_part(sandbox, intake.files, targets, deadline)
        if targets is None:
            self._note_costs(part.results)
        # Grading the reference itself asks every probe a correct submission does: the file is then complete,
        # and written at once. Other new results (a wrong block's catalogue entries) are written at most every
        # SAVE_EVERY_S and when the session closes: each write rewrites the whole file.
        complete = (targets is None and not part.skipped_for_time and not part.internal_errors
                    and Path(folder).resolve() == Path(spec.reference).resolve())
        if complete or time.monotonic() - self._saved_at > SAVE_EVERY_S:
            self._save_reference_results(complete)
        order = {t.name: i for i, t in enumerate(spec.targets)}
        cut: list[str] = []
        # in the spec's target order (blocks before the networks built from them), each target's tests as run
        tests = sorted((t.model_copy(update={"data": bounded(t.data, cut, t.nodeid)}) if t.data else t
                        for t in assign_points(spec, part.results, targets, gpu=self.sandbox_config.gpu)),
                       key=lambda t: order.get(t.target, len(order)))
        artifacts = bounded(part.artifacts, cut, "artifacts")
        problems = list(intake.problems)
        for file, (kind, message, detail) in sorted(part.broken.items()):
            if not any(p.file == file and p.kind == "missing" for p in problems):
                problems.append(Problem(file=file, kind="import" if kind in ("import", "missing") else kind,
                                        message=message, detail=detail))
        tests, mistakes = diagnose(spec, tests, problems)
        flags = [Flag(kind=kind if kind in ("timeout", "memory", "output", "crash", "refused") else "internal",
                      detail=detail, test=test) for kind, detail, test in part.events]
        flags += [Flag(kind="internal", detail=e) for e in part.internal_errors]
        if cut:
            flags.append(Flag(kind="output", detail="results too large to keep in full were shortened: "
                              + "; ".join(cut[:5]) + (f" and {len(cut) - 5} more" if len(cut) > 5 else "")))
        if part.skipped_for_time:
            flags.append(Flag(kind="timeout", detail=f"the submission's total limit of {spec.limits.submission_timeout_s:g} s "
                              f"ran out; {len(part.skipped_for_time)} test(s) did not run"))
        return SubmissionResult(
            student=student or Path(folder).name, assignment=spec.id,
            # Bonus points are extra credit: they count in the score, not in the maximum.
            score=round(sum(t.score for t in tests), 4),
            max_score=round(sum(t.max_score for t in tests if t.category != "bonus"), 4),
            execution_time=round(time.monotonic() - started, 3), tests=tests, problems=problems, flags=flags,
            mistakes=mistakes, feedback=spec.feedback,
            isolation=sandbox.isolation, grader_version=grader.__version__,
            graded_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            artifacts=artifacts, notebook=intake.notebook,
        )

    def _run_part(self, sandbox: Sandbox, files: dict[str, bytes], targets: set[str] | None,
                  deadline: float) -> "SuiteRun":
        """Run the hidden suite (the tests of ``targets``, or all) against ``files`` in ``sandbox``."""
        spec = self.spec
        client = WorkerClient(sandbox, files, import_timeout_s=spec.limits.import_timeout_s)
        isolation = Isolation(spec, self.stand_in_source)
        student_impl = StudentImplementation(client, spec, spec.limits.request_timeout_s,
                                             dry_run_input=self.reference.dry_run_input, isolation=isolation)
        plugin = GradingPlugin(spec, student_impl, self.reference, deadline=deadline, targets=targets,
                               isolation=isolation)
        self.reference.isolation = isolation
        try:
            run_suite(spec, plugin)
        finally:
            self.reference.isolation = None
            client.close()
        return SuiteRun(
            results=plugin.results, artifacts=plugin.artifacts_store, skipped_for_time=plugin.skipped_for_time,
            internal_errors=plugin.internal_errors,
            broken={f: (e.kind, e.message, e.traceback) for f, e in client.broken.items()},
            events=[(e.kind, e.detail, getattr(e, "test", None)) for e in client.events])

    def _run_in_lanes(self, files: dict[str, bytes], deadline: float) -> "SuiteRun":
        """The suite split into lanes (``grader.grading.lanes.plan``): every lane but the first in a forked
        grading process with a sandbox of its own, the first here; their runs put together in lane order.
        A lane whose process ends without an answer is graded here afterwards, and an internal flag says so."""
        plan = lanes_module.plan(self.spec, len(self._lanes) + 1, self._target_costs)
        if len(plan) < 2:
            return self._run_part(self.sandbox, files, None, deadline)
        known_before = set(self.reference.memo)
        started = []
        for i, lane in enumerate(plan[1:]):
            box = self._lane_sandbox(i)

            def work(box: Sandbox = box, lane: list[str] = lane) -> tuple[SuiteRun, dict[str, Any]]:
                generation = box.generation
                try:
                    run = self._run_part(box, files, set(lane), deadline)
                finally:
                    if box.generation != generation:   # a zygote this process had to start again dies with it
                        box.close()
                # What the reference answered here for the first time goes back to the session's memo (and cache).
                return run, {k: v for k, v in self.reference.memo.items() if k not in known_before}

            started.append((lane, lanes_module.start_in_fork(work)))
        runs = [self._run_part(self.sandbox, files, set(plan[0]), deadline)]
        for lane, (pid, read_end) in started:
            try:
                run, learned = lanes_module.collect(pid, read_end, deadline + LANE_GRACE_S)
                self.reference.memo.update(learned)
            except lanes_module.LaneFailed as e:
                run = self._run_part(self.sandbox, files, set(lane), deadline)
                run.internal_errors.append(f"the lane grading {', '.join(lane)} failed ({e}); it was graded again "
                                           "after the others")
            runs.append(run)
        return SuiteRun.merge(runs)

    def _note_costs(self, results: list[TestResult]) -> None:
        """Remember what each target cost (for balancing lanes), here and beside the reference's cache: from the
        session's first grading in which every test ran and passed (a wrong submission stops early where a right
        one works through), once per session."""
        if self._costs_noted or not results or any(r.outcome not in (Outcome.passed, Outcome.skipped) for r in results):
            return
        costs: dict[str, float] = {}
        for r in results:
            costs[r.target] = costs.get(r.target, 0.0) + r.duration_s
        self._target_costs, self._costs_noted = costs, True
        lanes_module.save_costs(self._costs_file, costs)


@dataclass
class SuiteRun:
    """What one run of the hidden suite found, before points and mistakes: values only (results, report
    sections, errors as text), so that a lane's forked grading process can send it back."""

    results: list[TestResult] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    skipped_for_time: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    broken: dict[str, tuple[str, str, str]] = field(default_factory=dict)   # file -> (kind, message, traceback)
    events: list[tuple[str, str, str | None]] = field(default_factory=list)  # (kind, detail, test)

    @staticmethod
    def merge(runs: list["SuiteRun"]) -> "SuiteRun":
        """Several lanes' runs as one: results, events and errors in lane order, a file's import error once,
        report sections joined (lists appended, tables by target)."""
        merged = SuiteRun()
        for run in runs:
            merged.results += run.results
            merged.skipped_for_time += run.skipped_for_time
            merged.internal_errors += run.internal_errors
            for file, error in run.broken.items():
                merged.broken.setdefault(file, error)
            merged.events += [e for e in run.events if e not in merged.events]
            for section, value in run.artifacts.items():
                mine = merged.artifacts.get(section)
                if isinstance(mine, list) and isinstance(value, list):
                    mine.extend(value)
                elif isinstance(mine, dict) and isinstance(value, dict):
                    mine.update(value)
                elif section not in merged.artifacts:
                    merged.artifacts[section] = list(value) if isinstance(value, list) else \
                        dict(value) if isinstance(value, dict) else value
        return merged


def _forget_modules_under(folder: Path) -> None:
    """Drop a suite's modules so that another suite with the same file names imports its own."""
    prefix = str(Path(folder).resolve())
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(prefix):
            del sys.modules[name]


def run_suite(spec: AssignmentSpec, plugin: GradingPlugin) -> None:
    """Run the hidden suite in this process with nothing but our own configuration."""
    # pytest's unraisableexception and threadexception plugins only turn exceptions raised in __del__ or in
    # threads into warnings (never an outcome here), and each runs gc.collect() when the run ends: 0.3-0.8 s
    # per submission walking every object torch and the suite made. Off. So are the logging plugin (a handler
    # added and removed around every phase of every test) and assertion rewriting (the suite's modules compiled
    # again for every submission): hidden tests report through Mistake and check(), never a bare assert or a log.
    # --confcutdir: the suite's own conftest.py files are loaded, never one in a folder above it (a course
    # repository's, or the one of the tests around a course kept under them).
    args = [str(spec.hidden_tests), "-c", str(SUITE_INI), "--rootdir", str(spec.hidden_tests),
            "--confcutdir", str(spec.hidden_tests), "--import-mode=importlib",
            "-q", "-s", "--assert=plain", "-p", "no:logging",
            "-p", "no:unraisableexception", "-p", "no:threadexception"]
    log = io.StringIO()
    previous = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # Suites import their own helper modules (``import checks``) from their folder.
    sys.path.insert(0, str(spec.hidden_tests))
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            code = pytest.main(args, plugins=[plugin])
    finally:
        sys.path.remove(str(spec.hidden_tests))
        _forget_modules_under(spec.hidden_tests)
        if previous is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = previous
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise SuiteError(f"the hidden suite for {spec.id} did not run (pytest exit {int(code)}):\n{log.getvalue()[-3000:]}")
