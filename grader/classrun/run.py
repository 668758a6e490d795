"""Grading a class: resumable, keyed by content, in worker processes that pay start-up once.

In: the spec, the submissions' sources and the output folder. Out: every student's
result in ``DIR/<student>/``, the run and the scores in the gradebook, and the run's
``Summary``. The pieces, in the order a run uses them:

- ``lock.OutputLock``: one run per output folder (``DIR/.grader.lock``, ``flock``);
- ``grader.intake.ingest``: folders, zips and LMS bulk downloads become one folder per student;
- ``planning.plan``: content keys (``keys``) decide who is kept, not regraded (same files,
  suite, reference and grader, and the GPU given or not); the rest become jobs;
- ``jobs.Job``: plain data naming one submission to grade; ``jobs.grade_job(job)`` grades it
  in whatever process runs it, writes ``results.json``, ``grading.json`` and the
  report into ``DIR/<student>/`` (atomically) and returns a small summary;
- an executor runs jobs: ``submit(job) -> Future`` (``executors.base``). The default, ``local``
  (``executors.local``), imports the engine and the reference's results here once, then forks N
  grading processes (``executors.process``; before any tensor operation, and never after CUDA
  starts) that each keep one ``GradingSession``, so one sandbox zygote, for all their submissions;
- the gradebook (``gradebook``) records the run and every student's score; ``summary`` holds
  the outcomes and the table printed at the end.

Another executor (a cluster) is chosen with ``grader run --executor NAME``: a
factory ``create_executor(context) -> Executor`` in ``grader/classrun/executors/NAME_executor.py``,
under the ``grader.executors`` entry-point group, or given to ``register_executor``
(``executors.registry``).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Callable

import grader
from grader.classrun.executors.base import Executor, ExecutorContext
from grader.classrun.executors.local import usable_cores
from grader.classrun.executors.registry import executor_factory, make_executor, run_uses_gpu
from grader.classrun.gradebook import Gradebook
from grader.classrun.jobs import Job, _SPECS, spec_file_of
from grader.classrun.keys import suite_key
from grader.classrun.lock import OutputBusy, OutputLock
from grader.classrun.planning import plan
from grader.classrun.progress import Progress
from grader.classrun.summary import StudentOutcome, Summary
from grader.intake.ingest import IngestError, ingest
from grader.spec import AssignmentSpec


STAGING_PREFIX = ".ingest-"   # DIR/.ingest-<pid>-<random>: one run's unpacked zips, removed when it ends


def _remove_abandoned_staging(out: Path) -> None:
    """Unpacked zips left by runs that were killed (their process is gone); called under the lock."""
    for folder in out.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name[len(STAGING_PREFIX):].split("-", 1)[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def _record(book: Gradebook, run_id: int, o: StudentOutcome) -> None:
    book.record(run_id, o.student, o.status, o.key, o.score, o.max_score, o.problems, o.graded_at,
                o.error or o.note)


def run_jobs(executor: Executor, todo: list[Job], window: int,
             done: Callable[[StudentOutcome], None], tick: Callable[[], None] = lambda: None,
             grading: Callable[[list[str]], None] = lambda students: None) -> None:
    """Submit jobs (at most ``window`` at a time) and report each outcome as it finishes, and who is
    being graded now (the jobs whose future says it is running).

    On any exception (Ctrl-C included) the executor is stopped at once and the
    exception goes on; results already written stay.
    """
    pending = deque(todo)
    running: dict[cf.Future, Job] = {}
    try:
        while pending or running:
            while pending and len(running) < window:
                job = pending.popleft()
                running[executor.submit(job)] = job
            finished, _ = cf.wait(running, timeout=0.25, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    outcome = StudentOutcome.from_fields("graded", {**future.result(),
                                                                    "other_files": list(job.other_files)})
                except Exception as e:  # noqa: BLE001 - one job's failure is that student's, not the run's
                    outcome = StudentOutcome(student=job.student, status="failed", key=job.key, error=str(e) or
                                             type(e).__name__)
                done(outcome)
            grading([job.student for future, job in running.items() if future.running()])
            tick()
    except BaseException:
        stop = getattr(executor, "terminate", None)
        if stop is not None:
            stop()
        else:
            executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def grade_class(spec: AssignmentSpec, sources: list[Path], out: Path, *, jobs: int | None = None,
                force: bool = False, executor: str = "local", id_pattern: str | None = None,
                progress: Progress | None = None, command: str = "") -> Summary:
    """Grade every submission ``sources`` hold into ``out``; see the module's docstring.

    Raises ``OutputBusy`` when another run holds ``out`` and ``grader.intake.ingest.IngestError``
    for arguments that cannot be read as submissions.
    """
    started = time.monotonic()
    out = Path(out).absolute()
    progress = progress or Progress()
    executor_factory(executor)   # an unknown or broken executor stops the run before anything is touched
    created = [p for p in [out, *out.parents] if not p.exists()]   # what a refused run must take away again
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out))
    try:
        # Arguments that cannot be read as submissions are refused before the lock or the gradebook is made.
        incoming, warnings = ingest([Path(s) for s in sources], staging, id_pattern)
        lock = OutputLock(out)
        lock.__enter__()
    except (IngestError, OutputBusy):
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:   # innermost first; only folders still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        with Gradebook.for_output(out) as book:
            book.mark_abandoned()
            _remove_abandoned_staging(out)
            suite = suite_key(spec)
            _SPECS[spec_file_of(spec)] = (spec, suite)   # what this process (and any it forks) grades with
            gpu = run_uses_gpu(executor)
            todo, ready = plan(spec, incoming, out, suite, force, gpu)
            workers = max(1, min(jobs or usable_cores(), len(todo)))
            summary = Summary(assignment=spec.id, out=out, suite_key=suite, executor=executor, jobs=workers,
                              students=ready, warnings=warnings)
            summary.run_id = run_id = book.start_run(assignment=spec.id, suite_key=suite,
                                                     grader_version=grader.__version__, command=command,
                                                     jobs=workers, executor=executor)
            for o in ready:
                _record(book, run_id, o)

            def done(o: StudentOutcome) -> None:
                summary.students.append(o)
                _record(book, run_id, o)
                progress.finished(o)

            status = "interrupted"
            progress.start(len(todo), len(summary.kept), workers, spec.id, gpu)
            try:
                if todo:
                    context = ExecutorContext(spec=spec, suite=suite, workers=workers, out=out, gpu=gpu)
                    run_jobs(make_executor(executor, context), todo, 2 * workers, done, progress.tick,
                             progress.running)
                status = "finished"
            finally:
                progress.close()
                summary.wall_s = time.monotonic() - started
                book.finish_run(run_id, status, summary.wall_s)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock.__exit__(None, None, None)
    return summary
