"""Class runs: resumable, keyed by content, parallel, with nothing left behind."""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from grader.classrun.executors import local, registry
from grader.classrun.executors.base import ExecutorContext, ExecutorUnavailable
from grader.classrun.executors.local import LocalExecutor
from grader.classrun.executors.registry import register_executor
from grader.classrun.jobs import Job, JobError, grade_job, spec_file_of
from grader.classrun.keys import suite_key
from grader.classrun.lock import OutputBusy, OutputLock
from grader.classrun.run import grade_class
from grader.results import load
from grader.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"
REFERENCE = (MINICOURSE / "reference" / "blocks.py").read_text()
WRONG = REFERENCE.replace("return 2 * x", "return 3 * x").replace("F.relu(self.conv(x)) + x", "F.relu(self.conv(x))")
SLOW = REFERENCE.replace("def double(x: int) -> int:\n", "def double(x: int) -> int:\n    import time\n    time.sleep(1.2)\n")


def make_class(folder: Path, students: dict[str, str]) -> list[Path]:
    paths = []
    for sid, code in students.items():
        (folder / sid).mkdir(parents=True)
        (folder / sid / "blocks.py").write_text(code)
        paths.append(folder / sid)
    return paths


def by_student(summary) -> dict[str, str]:
    return {o.student: o.status for o in summary.students}


def snapshot(out: Path, sid: str) -> tuple[str, int]:
    r = load(out / sid)
    return r.graded_at, (out / sid / "grading.json").stat().st_mtime_ns


@pytest.fixture(scope="module")
def spec():
    return load_spec(MINICOURSE)


def test_resume_grades_only_what_is_missing_and_mends_half_written_results(tmp_path, spec):
    subs = make_class(tmp_path / "subs", {"alice": REFERENCE, "bob": WRONG, "carol": REFERENCE})
    out = tmp_path / "out"
    first = grade_class(spec, subs, out, jobs=2)
    assert by_student(first) == {"alice": "graded", "bob": "graded", "carol": "graded"}
    before = {sid: snapshot(out, sid) for sid in ("alice", "carol")}
    (out / "bob" / "grading.json").unlink()                     # bob's result never finished
    (out / "carol" / "results.json").unlink()                   # killed between carol's two writes
    (out / "carol" / "report.html").unlink()
    (out / "carol" / ".results.json.abc.tmp").write_text("{")   # a write cut short
    again = grade_class(spec, subs, out, jobs=2)
    assert by_student(again) == {"alice": "kept", "bob": "graded", "carol": "kept"}
    assert {sid: snapshot(out, sid) for sid in ("alice", "carol")} == before
    assert json.loads((out / "carol" / "results.json").read_text())["score"] == 10
    assert (out / "carol" / "report.html").exists() and not list((out / "carol").glob(".*.tmp"))
    assert load(out / "bob").score < load(out / "alice").score


def test_a_run_with_the_gpu_regrades_what_a_run_without_it_kept(tmp_path, spec, monkeypatch, capsys):
    """Whether the GPU checks ran decides a result: gaining the GPU regrades; the same machine again keeps."""
    from grader.classrun.progress import LineLog

    subs = make_class(tmp_path / "subs", {"alice": REFERENCE})
    out = tmp_path / "out"
    assert by_student(grade_class(spec, subs, out, jobs=1)) == {"alice": "graded"}
    monkeypatch.setattr(local, "cuda_usable", lambda: True)   # a GPU sandbox also starts on a CPU
    with_gpu = grade_class(spec, subs, out, jobs=1, progress=LineLog(sys.stdout))
    assert by_student(with_gpu) == {"alice": "graded"}
    assert "and the GPU: GPU checks run" in capsys.readouterr().out
    assert by_student(grade_class(spec, subs, out, jobs=1)) == {"alice": "kept"}
    monkeypatch.setattr(local, "cuda_usable", lambda: False)
    assert by_student(grade_class(spec, subs, out, jobs=1)) == {"alice": "graded"}


def test_changed_suite_regrades_everything_and_force_regrades(tmp_path, minicourse_copy):
    spec = load_spec(minicourse_copy)
    subs = make_class(tmp_path / "subs", {"alice": REFERENCE, "bob": WRONG})
    out = tmp_path / "out"
    grade_class(spec, subs, out, jobs=1)
    assert by_student(grade_class(spec, subs, out, jobs=1)) == {"alice": "kept", "bob": "kept"}
    assert by_student(grade_class(spec, subs, out, jobs=1, force=True)) == {"alice": "graded", "bob": "graded"}
    hidden = minicourse_copy / "hidden" / "test_blocks.py"
    hidden.write_text(hidden.read_text() + "\n# the suite changed\n")
    changed = load_spec(minicourse_copy)
    summary = grade_class(changed, subs, out, jobs=1)
    assert by_student(summary) == {"alice": "graded", "bob": "graded"}
    assert load(out / "alice").key == summary.students[0].key


def _scores(out: Path, sids) -> dict:
    found = {}
    for sid in sids:
        r = load(out / sid)
        found[sid] = (r.score, r.max_score, [(t.nodeid, t.outcome.value, t.score) for t in r.tests],
                      [p.message for p in r.problems])
    return found


def test_jobs_two_gives_the_same_results_as_jobs_one_and_as_alone(tmp_path, spec):
    students = {"alice": REFERENCE, "bob": WRONG, "carol": REFERENCE, "dave": "import nonsense_module\n"}
    subs = make_class(tmp_path / "subs", students)
    one = grade_class(spec, subs, tmp_path / "one", jobs=1)
    two = grade_class(spec, subs, tmp_path / "two", jobs=2)
    grade_class(spec, [subs[1]], tmp_path / "alone")
    assert _scores(tmp_path / "alone", ["bob"])["bob"] == _scores(tmp_path / "one", ["bob"])["bob"]
    assert one.jobs == 1 and two.jobs == 2
    assert len({o.worker_pid for o in two.graded}) == 2        # both workers graded
    assert len({o.worker_pid for o in one.graded}) == 1        # one worker, one session, every submission
    assert _scores(tmp_path / "one", students) == _scores(tmp_path / "two", students)
    assert not one.failed and not two.failed and one.exit_code == 0


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, spec):
    subs = make_class(tmp_path / "subs", {"alice": REFERENCE})
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out):
        with pytest.raises(OutputBusy, match=r"is being graded by another run \(pid \d+ by .* since .*\)"):
            grade_class(spec, subs, out)
    assert not (out / "alice").exists()
    with OutputLock(out):   # released: it can be taken again
        pass


def test_jobs_are_plain_data_and_another_executor_plugs_in(tmp_path, spec):
    """The seam a cluster executor uses: any concurrent.futures executor that runs grade_job."""

    class PoolExecutor:
        def __init__(self, context: ExecutorContext) -> None:
            self.pool = cf.ProcessPoolExecutor(context.workers, mp_context=mp.get_context("fork"))

        def submit(self, job: Job) -> cf.Future:
            json.dumps(asdict(job))          # plain data only
            return self.pool.submit(grade_job, job)

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    register_executor("test-pool", PoolExecutor)
    try:
        subs = make_class(tmp_path / "subs", {"alice": REFERENCE, "bob": WRONG})
        summary = grade_class(spec, subs, tmp_path / "out", jobs=2, executor="test-pool")
    finally:
        registry.EXECUTORS.pop("test-pool")
    assert summary.executor == "test-pool" and by_student(summary) == {"alice": "graded", "bob": "graded"}
    json.dumps(summary.to_json())
    assert load(tmp_path / "out" / "alice").score == 10
    with pytest.raises(ExecutorUnavailable, match="unknown executor 'nope'"):
        grade_class(spec, subs, tmp_path / "out", executor="nope")


def test_a_job_planned_with_another_suite_is_refused(tmp_path, spec):
    job = Job(student="alice", submission=str(tmp_path), out=str(tmp_path / "out"), key="k", assignment=spec.id,
              spec_file=str(MINICOURSE / "assignment.toml"), suite="not-this-suite")
    with pytest.raises(JobError, match="differs from the one the run was planned with"):
        grade_job(job)


def test_a_killed_worker_fails_only_its_job_and_its_cgroups_go(tmp_path, spec):
    subs = make_class(tmp_path / "subs", {"slow1": SLOW, "slow2": SLOW, "alice": REFERENCE})
    suite = suite_key(spec)
    jobs = [Job(student=p.name, submission=str(p), out=str(tmp_path / "out"), key="k", assignment=spec.id,
                spec_file=spec_file_of(spec), suite=suite) for p in subs]
    executor = LocalExecutor(ExecutorContext(spec=spec, suite=suite, workers=2, out=tmp_path / "out"))
    try:
        deadline = time.monotonic() + 60
        with_cgroups = os.geteuid() == 0
        while with_cgroups and not all(s.cgroups for s in executor._slots) and time.monotonic() < deadline:
            time.sleep(0.05)   # both sandboxes started (and reported their cgroups)
        futures = [executor.submit(j) for j in jobs[:2]]
        while not all(s.current for s in executor._slots) and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = executor._slots[0]
        assert victim.cgroups or not with_cgroups
        time.sleep(0.5)
        victim.process.kill()
        done, _ = cf.wait(futures, timeout=120)
        assert len(done) == 2
        outcomes = sorted("error" if f.exception() else "ok" for f in futures)
        assert outcomes == ["error", "ok"]
        failed = next(f for f in futures if f.exception())
        assert "killed by signal 9" in str(failed.exception())
        assert executor.submit(jobs[2]).result(timeout=120)["score"] == 10   # the survivor grades the rest
        assert not any(Path(p).exists() for p in victim.cgroups)
    finally:
        executor.shutdown()
    assert all(not s.process.is_alive() for s in executor._slots)


# --- nothing left behind: run in a cgroup of its own --------------------------------------

CONTROLLERS = ("pids", "memory")


def _own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    raise OSError(controller)


@pytest.fixture
def run_cgroups():
    """Fresh pids and memory cgroups (v1): everything a run starts lives under them, sandboxes included."""
    if os.geteuid() != 0 or not all((Path("/sys/fs/cgroup") / c).is_dir() for c in CONTROLLERS):
        pytest.skip("needs root and cgroup v1 pids and memory controllers")
    name = f"grader-test-{uuid.uuid4().hex[:8]}"
    paths = []
    try:
        for c in CONTROLLERS:
            path = Path("/sys/fs/cgroup") / c / _own_cgroup(c).lstrip("/") / name
            path.mkdir()
            paths.append(path)
    except OSError as e:
        for p in paths:
            p.rmdir()
        pytest.skip(f"cannot create cgroups here: {e}")
    yield paths
    for top in paths:   # tidy up even after a failure
        for sub in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            for pid in (sub / "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
            _rmdir_retry(sub)
        _rmdir_retry(top)


def _rmdir_retry(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def _start_run(paths: list[Path], args: list[str], cgroups: list[Path]) -> subprocess.Popen:
    def enter() -> None:
        for cg in cgroups:
            (cg / "cgroup.procs").write_text(str(os.getpid()))

    env = {**os.environ, "GRADER_COURSES": str(MINICOURSE.parent)}
    return subprocess.Popen([sys.executable, "-m", "grader.cli", "run", *map(str, paths), "--assignment", "minicourse",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=enter)


def _wait_empty(cgroups: list[Path], timeout: float = 30) -> tuple[str, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = (cgroups[0] / "pids.current").read_text().strip()
        subs = [str(p.relative_to(cg)) for cg in cgroups for p in cg.iterdir() if p.is_dir()]
        if (tasks == "0" and not subs) or time.monotonic() > deadline:
            return tasks, subs
        time.sleep(0.1)


def test_no_processes_or_cgroups_are_left_after_a_run(tmp_path, run_cgroups):
    subs = make_class(tmp_path / "subs", {"alice": REFERENCE, "bob": WRONG, "carol": REFERENCE})
    proc = _start_run(subs, ["--out", str(tmp_path / "out"), "--jobs", "2", "--json"], run_cgroups)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["graded"] == 3
    assert _wait_empty(run_cgroups, timeout=10) == ("0", [])


def test_a_run_killed_half_way_resumes_with_one_result_each(tmp_path, run_cgroups):
    students = {f"s{i}": SLOW for i in range(1, 5)}
    subs = make_class(tmp_path / "subs", students)
    out = tmp_path / "out"
    proc = _start_run(subs, ["--out", str(out), "--jobs", "1", "--json"], run_cgroups)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/grading.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    # the workers notice their parent died, close their sandboxes and exit
    assert _wait_empty(run_cgroups) == ("0", [])
    finished = {p.parent.name: snapshot(out, p.parent.name) for p in out.glob("*/grading.json")}
    assert 2 <= len(finished) < 4
    again = _start_run(subs, ["--out", str(out), "--jobs", "1", "--json"], run_cgroups)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    summary = json.loads(stdout)
    status = {s["student"]: s["status"] for s in summary["students"]}
    assert {sid for sid, st in status.items() if st == "kept"} == set(finished)
    assert {sid for sid, st in status.items() if st == "graded"} == set(students) - set(finished)
    assert {sid: snapshot(out, sid) for sid in finished} == finished          # not regraded
    for sid in students:
        assert sorted(p.name for p in (out / sid).iterdir()) == ["grading.json", "report.html", "results.json"]
        assert load(out / sid).score == 10
    assert not list(out.glob(".ingest*"))
    assert _wait_empty(run_cgroups, timeout=10) == ("0", [])


def test_ctrl_c_stops_the_workers_and_the_next_run_grades_the_rest(tmp_path, spec):
    from grader.classrun.gradebook import Gradebook
    from grader.classrun.progress import Progress

    class InterruptAfterFirst(Progress):
        def finished(self, outcome) -> None:
            super().finished(outcome)
            raise KeyboardInterrupt

    subs = make_class(tmp_path / "subs", {"alice": REFERENCE, "bob": SLOW, "carol": SLOW})
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        grade_class(spec, subs, out, jobs=1, progress=InterruptAfterFirst())
    assert [p.parent.name for p in out.glob("*/grading.json")] == ["alice"]
    assert not list(out.glob(".ingest*"))
    assert not mp.active_children()
    with OutputLock(out):   # the lock was released
        pass
    again = grade_class(spec, subs, out, jobs=1)
    assert by_student(again) == {"alice": "kept", "bob": "graded", "carol": "graded"}
    with Gradebook.for_output(out, readonly=True) as book:
        assert [r.status for r in book.runs()] == ["interrupted", "finished"]
