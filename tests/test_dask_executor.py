"""`grader run --executor dask`: the mini course's class graded on a Dask LocalCluster equals the local run.

The cluster has one single-threaded worker process (processes=True). A job whose
worker dies is run again and recorded once; results already there are kept; with
GRADER_DASK_SHIP=1 the files travel both ways instead of through a shared folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

import distributed  # noqa: E402 - installed by the set-up (the cluster extra)

from grader.classrun.executors.base import ExecutorContext  # noqa: E402
from grader.classrun.executors.registry import register_executor  # noqa: E402
from grader.classrun.jobs import Job, JobError, spec_file_of  # noqa: E402
from grader.classrun.run import grade_class  # noqa: E402
from grader.classrun.executors import dask_executor  # noqa: E402
from grader.classrun.executors.dask_executor import DaskExecutor, ExecutorError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"
REFERENCE = (MINICOURSE / "reference" / "blocks.py").read_text(encoding="utf-8")

STUDENTS = {
    "good": {"blocks.py": REFERENCE},
    "noskip": {"blocks.py": REFERENCE.replace("F.relu(self.conv(x)) + x", "F.relu(self.conv(x))")},
    "broken": {"blocks.py": "import torch\nclass SkipBlock(:\n"},
    "empty": {"notes.txt": "nothing yet\n"},
}


MEMORY = re.compile(r"memory<= \d+ MiB")


def comparable(folder: Path) -> tuple[dict, dict]:
    """results.json and grading.json without what differs from run to run (timings, dates, and the
    sandbox's memory limit, which adds the zygote's size measured at its start)."""
    gradescope = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    gradescope.pop("execution_time")
    gradescope["output"] = MEMORY.sub("memory<= N MiB", gradescope["output"])
    full = json.loads((folder / "grading.json").read_text(encoding="utf-8"))
    for field in ("execution_time", "graded_at"):
        full.pop(field)
    full["isolation"] = MEMORY.sub("memory<= N MiB", full["isolation"])
    for test in full["tests"]:
        test.pop("duration_s")
    return gradescope, full


def grades(out: Path) -> list[tuple]:
    """The gradebook's rows, as the run's parent process recorded them."""
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        return db.execute("SELECT run_id, student, status, key, score FROM grades ORDER BY run_id, student").fetchall()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """The mini course, from a copy that has every folder its spec names (git keeps no empty folder)."""
    from grader.spec import load_spec

    course = tmp_path_factory.mktemp("courses") / "mini"
    shutil.copytree(MINICOURSE, course)
    (course / "public").mkdir(exist_ok=True)
    return load_spec(course)


@pytest.fixture(scope="module")
def students(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("class")
    for sid, files in STUDENTS.items():
        for rel, text in files.items():
            (base / sid / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / sid / rel).write_text(text, encoding="utf-8")
    # a symbolic link is left out of grading, and the result says so
    (base / "good" / "link.py").symlink_to(base / "good" / "blocks.py")
    return [base / sid for sid in STUDENTS]


@pytest.fixture(scope="module")
def local_out(spec, students, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    summary = grade_class(spec, students, out, jobs=1)
    assert not summary.failed and len(summary.graded) == len(students)
    return out


@pytest.fixture(scope="module")
def cluster():
    dask_executor.register()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


@pytest.fixture
def scheduler(cluster, monkeypatch):
    monkeypatch.setenv(dask_executor.ENV_SCHEDULER, cluster.scheduler_address)
    for name in (dask_executor.ENV_SHIP, dask_executor.ENV_GPU):
        monkeypatch.delenv(name, raising=False)
    return cluster.scheduler_address


def assert_same_as_local(out: Path, local_out: Path, students: list[Path]) -> None:
    for folder in students:
        assert comparable(out / folder.name) == comparable(local_out / folder.name), folder.name
        assert (out / folder.name / "report.html").is_file()


def test_class_through_dask_equals_local(spec, students, local_out, scheduler, tmp_path):
    summary = grade_class(spec, students, tmp_path, jobs=1, executor="dask")
    assert not summary.failed, [o.error for o in summary.failed]
    assert sorted(o.student for o in summary.graded) == sorted(STUDENTS)
    assert summary.executor == "dask"
    assert_same_as_local(tmp_path, local_out, students)
    # a second run keeps every result and submits nothing
    again = grade_class(spec, students, tmp_path, jobs=1, executor="dask")
    assert sorted(o.student for o in again.kept) == sorted(STUDENTS) and not again.graded
    rows = grades(tmp_path)
    assert [r[2] for r in rows] == ["graded"] * 4 + ["kept"] * 4


def test_shipped_files_come_back_into_the_output_folder(spec, students, local_out, scheduler, tmp_path, monkeypatch):
    monkeypatch.setenv(dask_executor.ENV_SHIP, "1")
    summary = grade_class(spec, students, tmp_path, jobs=1, executor="dask")
    assert not summary.failed, [o.error for o in summary.failed]
    assert_same_as_local(tmp_path, local_out, students)


def dies_once(marker_dir: str, victim: str):
    """A task whose worker process dies the first time it runs ``victim``'s job (a node lost mid-job)."""

    def task(payload):
        marker = Path(marker_dir) / payload["student"]
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        if payload["student"] == victim and len(marker.read_text().split()) == 1:
            os._exit(1)
        return dask_executor.run_dask_job(payload)

    return task


def test_a_worker_death_is_retried_and_recorded_once(spec, students, local_out, scheduler, tmp_path):
    markers = tmp_path / "attempts"
    markers.mkdir()
    register_executor("dask-dies-once", lambda context: DaskExecutor(context, task=dies_once(str(markers), "good")))
    some = [f for f in students if f.name in ("good", "noskip")]
    out = tmp_path / "out"
    summary = grade_class(spec, some, out, jobs=1, executor="dask-dies-once")
    assert not summary.failed, [o.error for o in summary.failed]
    attempts = (markers / "good").read_text().split()
    assert len(attempts) == 2 and attempts[0] != attempts[1]  # run again, in a fresh worker process
    assert [(r[1], r[2]) for r in grades(out)] == [("good", "graded"), ("noskip", "graded")]  # one row each
    assert_same_as_local(out, local_out, some)


def test_a_worker_with_another_suite_refuses(spec, students, scheduler, tmp_path):
    context = ExecutorContext(spec=spec, suite="planned-with-another-suite", workers=1, out=tmp_path)
    executor = DaskExecutor(context)
    try:
        job = Job(student="good", submission=str(students[0]), out=str(tmp_path), key="k" * 64,
                           assignment=spec.id, spec_file=spec_file_of(spec), suite=context.suite)
        with pytest.raises(JobError, match="differs"):
            executor.submit(job).result(timeout=300)
    finally:
        executor.shutdown()
    assert not (tmp_path / "good").exists()


class FakeClient:
    """Records what would be submitted; offers one worker with the given resources."""

    def __init__(self, resources):
        self.resources = resources
        self.submitted = []

    def scheduler_info(self):
        return {"workers": {"tcp://w1": {"resources": self.resources}}}

    def submit(self, fn, payload, **kwargs):
        self.submitted.append((payload, kwargs))
        return FakeFuture()


class FakeFuture:
    def add_done_callback(self, fn):
        pass


def test_gpu_jobs_ask_for_the_gpu_and_carry_plain_data(spec, students, tmp_path):
    fake = FakeClient({"GPU": 1})
    context = ExecutorContext(spec=spec, suite="s", workers=1, out=tmp_path)
    executor = DaskExecutor(context, client=fake, gpu=True, ship=True)
    job = Job(student="good", submission=str(students[0]), out=str(tmp_path), key="k" * 64,
                       assignment=spec.id, spec_file=spec_file_of(spec), suite="s")
    executor.submit(job)
    payload, kwargs = fake.submitted[0]
    assert kwargs["resources"] == {"GPU": 1} and payload["gpu"] is True
    assert kwargs["key"] == DaskExecutor.task_key(job) and kwargs["retries"] >= 1

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        return isinstance(value, (str, bytes, int, float, bool, type(None)))

    assert plain(payload)
    assert set(payload["files"]) == {"blocks.py"} and "left out" in payload["left_out"][0]["message"]


def test_gpu_jobs_without_gpu_workers_are_refused(spec, tmp_path):
    context = ExecutorContext(spec=spec, suite="s", workers=1, out=tmp_path)
    with pytest.raises(ExecutorError, match="no Dask worker offers"):
        DaskExecutor(context, client=FakeClient({}), gpu=True)
