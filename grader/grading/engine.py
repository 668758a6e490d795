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
from pathlib import Path

import pytest

import grader
from grader.grading.bounds import bounded
from grader.grading.client import WorkerClient
from grader.intake.submission import read_submission
from grader.grading.isolation import Isolation
from grader.grading.mistakes import diagnose
from grader.intake.notebook.take import rules_for
from grader.grading.plugin import GradingPlugin, SuiteError, assign_points
from grader.grading.refcache import ReferenceCache
from grader.grading.reference import load_reference
from grader.results import Flag, Problem, SubmissionResult
from grader.grading.sandbox import Sandbox, SandboxConfig
from grader.spec import AssignmentSpec
from grader.testing import ReferenceImplementation, StudentImplementation

SUITE_INI = Path(__file__).resolve().parent / "suite.ini"
SAVE_EVERY_S = 30.0   # how often, at most, new reference results are written to the cache before the session closes


class GradingSession:
    def __init__(self, spec: AssignmentSpec, threads: int = 1, gpu: bool = False,
                 cache_folder: Path | None = None, sandbox: Sandbox | None = None) -> None:
        """``sandbox``: one already started for this session (``Sandbox(SandboxConfig.for_spec(spec, threads,
        gpu), wait=False)``, launched before the imports this needs so that both proceed at once)."""
        try:
            self._set_up(spec, threads, gpu, cache_folder, sandbox)
        except BaseException:
            if sandbox is not None:
                sandbox.close()
            raise

    def _set_up(self, spec: AssignmentSpec, threads: int, gpu: bool, cache_folder: Path | None,
                sandbox: Sandbox | None) -> None:
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
        if sandbox is not None and sandbox.config != self.sandbox_config:
            raise ValueError("the sandbox given was started with another configuration than this session's")
        self._sandbox: Sandbox | None = sandbox

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is not None:
            self._sandbox.ready()
        if self._sandbox is None or not self._sandbox.alive():
            if self._sandbox is not None:
                self._sandbox.close()
            self._sandbox = Sandbox(self.sandbox_config)
        return self._sandbox

    def close(self) -> None:
        self._save_reference_results()
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

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
        sandbox = self.sandbox
        client = WorkerClient(sandbox, intake.files, import_timeout_s=spec.limits.import_timeout_s)
        isolation = Isolation(spec, self.stand_in_source)
        student_impl = StudentImplementation(client, spec, spec.limits.request_timeout_s,
                                             dry_run_input=self.reference.dry_run_input, isolation=isolation)
        plugin = GradingPlugin(spec, student_impl, self.reference, deadline=started + spec.limits.submission_timeout_s,
                              targets=targets, isolation=isolation)
        self.reference.isolation = isolation
        try:
            run_suite(spec, plugin)
        finally:
            self.reference.isolation = None
            client.close()
        # Grading the reference itself asks every probe a correct submission does: the file is then complete,
        # and written at once. Other new results (a wrong block's catalogue entries) are written at most every
        # SAVE_EVERY_S and when the session closes: each write rewrites the whole file.
        complete = (targets is None and not plugin.skipped_for_time and not plugin.internal_errors
                    and Path(folder).resolve() == Path(spec.reference).resolve())
        if complete or time.monotonic() - self._saved_at > SAVE_EVERY_S:
            self._save_reference_results(complete)
        order = {t.name: i for i, t in enumerate(spec.targets)}
        cut: list[str] = []
        # in the spec's target order (blocks before the networks built from them), each target's tests as run
        tests = sorted((t.model_copy(update={"data": bounded(t.data, cut, t.nodeid)}) if t.data else t
                        for t in assign_points(spec, plugin.results, targets, gpu=self.sandbox_config.gpu)),
                       key=lambda t: order.get(t.target, len(order)))
        artifacts = bounded(plugin.artifacts_store, cut, "artifacts")
        problems = list(intake.problems)
        for file, error in sorted(client.broken.items()):
            if not any(p.file == file and p.kind == "missing" for p in problems):
                problems.append(Problem(file=file, kind="import" if error.kind in ("import", "missing") else error.kind,
                                        message=error.message, detail=error.traceback))
        tests, mistakes = diagnose(spec, tests, problems)
        flags = [Flag(kind=e.kind if e.kind in ("timeout", "memory", "output", "crash", "refused") else "internal",
                      detail=e.detail, test=getattr(e, "test", None)) for e in client.events]
        flags += [Flag(kind="internal", detail=e) for e in plugin.internal_errors]
        if cut:
            flags.append(Flag(kind="output", detail="results too large to keep in full were shortened: "
                              + "; ".join(cut[:5]) + (f" and {len(cut) - 5} more" if len(cut) > 5 else "")))
        if plugin.skipped_for_time:
            flags.append(Flag(kind="timeout", detail=f"the submission's total limit of {spec.limits.submission_timeout_s:g} s "
                              f"ran out; {len(plugin.skipped_for_time)} test(s) did not run"))
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
    # per submission walking every object torch and the suite made. Off.
    args = [str(spec.hidden_tests), "-c", str(SUITE_INI), "--rootdir", str(spec.hidden_tests), "--import-mode=importlib",
            "-q", "-s", "-W", "ignore::pytest.PytestAssertRewriteWarning",
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
