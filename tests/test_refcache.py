"""The reference's probe results, cached on disk once per suite version (grader.grading.refcache)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.grading import refcache
from grader.grading.engine import GradingSession
from grader.grading.refcache import ReferenceCache, content_key
from grader.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"
WRONG = (MINICOURSE / "reference" / "blocks.py").read_text(encoding="utf-8").replace(
    "F.relu(self.conv(x)) + x", "F.relu(self.conv(x))")


def course(dest: Path, edit: tuple[str, str] | None = None) -> Path:
    """A copy of the mini course; ``edit`` = (file relative to it, text appended)."""
    shutil.copytree(MINICOURSE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    if edit:
        path = dest / edit[0]
        before = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(before + edit[1], encoding="utf-8")
    return dest


def grade(folder: Path, cache: Path, submission: Path | None = None):
    """Grade ``submission`` (default: the course's reference) in a fresh session; (result, session)."""
    spec = load_spec(folder)
    with GradingSession(spec, cache_folder=cache) as session:
        loaded = len(session.reference.memo)
        result = session.grade(submission or spec.reference, "student")
    return result, session, loaded


def outcome(result) -> list:
    return [(t.nodeid, t.outcome.value, t.score, t.message) for t in result.tests]


@pytest.fixture(scope="module")
def graded_once(tmp_path_factory):
    """The mini course's reference graded once with an empty cache: (course folder, cache folder, session, result)."""
    base = tmp_path_factory.mktemp("once")
    folder = course(base / "course")
    result, session, loaded = grade(folder, base / "cache")
    assert loaded == 0 and session.reference.computed > 0
    return folder, base / "cache", session, result


def cache_copy(graded_once, dest: Path) -> Path:
    shutil.copytree(graded_once[1], dest)
    return dest


@pytest.fixture
def wrong(tmp_path) -> Path:
    folder = tmp_path / "wrong"
    folder.mkdir()
    (folder / "blocks.py").write_text(WRONG, encoding="utf-8")
    return folder


def test_a_second_run_does_not_recompute_and_grades_the_same(tmp_path, graded_once, wrong):
    cache = cache_copy(graded_once, tmp_path / "cache")
    first, s1 = graded_once[3], graded_once[2]
    assert s1.reference_cache.path.is_file() and s1.reference_cache.complete
    # another process's session, another copy of the same course (content, not paths, is the key)
    again, s2, loaded2 = grade(course(tmp_path / "b"), cache)
    assert loaded2 == s1.reference.computed and s2.reference.computed == 0
    assert s2.reference._modules is None   # nothing asked for the reference's code: it was never imported
    assert outcome(again) == outcome(first) and again.score == first.score == first.max_score
    # the results themselves: what was loaded is what was computed, value for value
    for key, value in s1.reference.memo.items():
        got = s2.reference.memo[key]
        assert json.dumps(_plain(got), sort_keys=True) == json.dumps(_plain(value), sort_keys=True)
    # a wrong submission is graded the same with the cache as without it
    fresh, _, _ = grade(graded_once[0], tmp_path / "empty-cache", wrong)
    cached, s3, _ = grade(graded_once[0], cache, wrong)
    assert s3.reference.computed == 0 and outcome(cached) == outcome(fresh) and cached.score < cached.max_score


def _plain(value):
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.tolist()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("edit", [
    ("assignment.toml", "\n# the spec changed\n"),
    ("reference/blocks.py", "\n# the reference changed\n"),
    ("hidden/test_blocks.py", "\n# the suite changed\n"),
    ("hidden/catalogue.py", "# a helper of the suite appeared\n"),
])
def test_a_change_in_the_course_recomputes(tmp_path, graded_once, edit):
    cache = cache_copy(graded_once, tmp_path / "cache")
    first = graded_once[2]
    _, changed, loaded = grade(course(tmp_path / "b", edit), cache)
    assert loaded == 0 and changed.reference.computed == first.reference.computed > 0
    assert changed.reference_cache.path != first.reference_cache.path
    assert (cache / first.reference_cache.path.name).is_file() and changed.reference_cache.path.is_file()


def test_every_key_part_changes_the_key(tmp_path, monkeypatch):
    spec = load_spec(MINICOURSE)
    base = content_key(spec, gpu=False)
    assert content_key(spec, gpu=False) == base
    assert content_key(spec, gpu=True) != base
    monkeypatch.setattr(refcache, "torch_version", lambda: "9.9.9")
    assert content_key(spec, gpu=False) != base
    monkeypatch.undo()
    # the grader's probe code: one more byte in any of its files
    code = tmp_path / "probes.py"
    code.write_text("x = 1\n")
    parts = refcache.probe_code()
    monkeypatch.setattr(refcache, "probe_code", lambda: parts + [("extra", code)])
    with_code = content_key(spec, gpu=False)
    code.write_text("x = 2\n")
    assert content_key(spec, gpu=False) != with_code
    assert {label for label, _ in parts} >= {"worker", "testing", "reference", "refcache"}
    # the stand-ins file, for a course that has one
    day09 = load_spec(ROOT / "courses" / "day09")
    assert day09.stand_ins is not None
    stand_ins = tmp_path / "stand_ins.py"
    stand_ins.write_bytes(day09.stand_ins.read_bytes() + b"\n# changed\n")
    assert content_key(day09.model_copy(update={"stand_ins": stand_ins}), False) != content_key(day09, False)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "other key", "object array"])
def test_a_damaged_file_is_not_used_and_is_replaced(tmp_path, graded_once, damage):
    folder, _, first, _ = graded_once
    cache = cache_copy(graded_once, tmp_path / "cache")
    path = cache / first.reference_cache.path.name
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["meta.json"])
    array = next(n for n in members if n.startswith("arrays/"))
    if damage == "garbage":
        path.write_bytes(b"not a zip at all")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":   # one byte of an array changed: the checksum no longer matches
        blob = bytearray(members[array])
        blob[-1] ^= 0xFF
        members[array] = bytes(blob)
        _rezip(path, members)
    elif damage == "other key":   # a well-formed file made for other content, under this content's name
        meta["key"] = "0" * 64
        members["meta.json"] = json.dumps(meta).encode()
        _rezip(path, members)
    else:   # an array of Python objects (what np.load would unpickle), with a checksum that matches
        buf = io.BytesIO()
        np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        members[array] = buf.getvalue()
        meta["sha256"] = refcache._digest(members["entries.json"], [members[f"arrays/{i}.npy"]
                                                                    for i in range(meta["arrays"])])
        members["meta.json"] = json.dumps(meta).encode()
        _rezip(path, members)
    spec = load_spec(folder)
    damaged = ReferenceCache(spec, folder=cache)
    assert damaged.load() == {} and damaged.problem and not damaged.complete
    # what replaces it: the results computed again, saved over the damaged file
    assert damaged.save(first.reference.memo, complete=True)
    again = ReferenceCache(spec, folder=cache)
    assert again.load().keys() == first.reference.memo.keys() and again.complete and again.problem is None


def test_a_damaged_file_is_computed_again_in_a_grading(tmp_path, graded_once):
    folder, _, first, _ = graded_once
    cache = cache_copy(graded_once, tmp_path / "cache")
    path = cache / first.reference_cache.path.name
    path.write_bytes(path.read_bytes()[:-10])
    _, again, loaded = grade(folder, cache)
    assert loaded == 0 and again.reference.computed == first.reference.computed
    assert ReferenceCache(load_spec(folder), folder=cache).load().keys() == first.reference.memo.keys()


def _rezip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_the_file_holds_plain_data_only(tmp_path, graded_once):
    session = graded_once[2]
    with zipfile.ZipFile(session.reference_cache.path) as zf:
        names = zf.namelist()
        assert set(names) == {"meta.json", "entries.json"} | {n for n in names if n.startswith("arrays/")}
        json.loads(zf.read("entries.json"))
        meta = json.loads(zf.read("meta.json"))
        assert meta["key"] == session.reference_cache.key and meta["complete"] is True
    # every array loads without pickle (np.load of the .npz)
    with np.load(session.reference_cache.path, allow_pickle=False) as npz:
        arrays = [n for n in npz.files if n.startswith("arrays/")]
        assert len(arrays) == len([n for n in names if n.startswith("arrays/")]) > 0
        for name in arrays:
            assert npz[name].dtype != object
    # a value that is not plain data is never stored; the rest is
    spec = load_spec(graded_once[0])
    store = ReferenceCache(spec, folder=tmp_path / "other")
    assert store.save({"plain": {"x": np.arange(3.0)}, "object": {"x": object()}})
    assert set(ReferenceCache(spec, folder=tmp_path / "other").load()) == {"plain"}
    assert not store.save({"plain": {"x": np.arange(3.0)}, "object": {"x": object()}})   # nothing new to write


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "explicit"))
    assert refcache.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("GRADER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert refcache.cache_dir() == tmp_path / "xdg" / "cnn-grader"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert refcache.cache_dir() == tmp_path / "home" / ".cache" / "cnn-grader"


def test_a_grading_that_finds_every_result_cached_never_imports_torch(tmp_path):
    """torch (about a second to import) is the sandbox's: the grading process imports it only to compute a
    reference result that is neither memoised nor cached. `grader run` of Day 9's reference, once to fill the
    cache and once more in a fresh process: the second imports torch neither in its own process nor in those it
    forks (the grading process, the lanes' processes), and grades the same."""
    import subprocess
    import sys

    code = ("import builtins, json, os, sys\n"
            "seen, real = sys.argv.pop(1), builtins.__import__\n"
            "def spy(name, *a, **k):\n"
            "    if name.split('.')[0] == 'torch' and 'torch' not in sys.modules:\n"
            "        open(seen, 'a').write(f'{os.getpid()}\\n')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = spy\n"
            "from grader.cli import main\ncode = main(sys.argv[1:])\n"
            "print(json.dumps({'code': code, 'torch': os.path.exists(seen)}))\n")
    submission = ROOT / "reference" / "day09"
    runs = []
    for i in range(2):
        out = tmp_path / f"out-{i}"
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / f"torch-{i}"), "run", str(submission),
                               "--out", str(out), "--jobs", "1"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append((json.loads(proc.stdout.strip().splitlines()[-1]),
                     json.loads((out / "day09" / "results.json").read_text(encoding="utf-8"))))
    (first, first_results), (second, second_results) = runs
    assert first["code"] == second["code"] == 0
    assert second["torch"] is False
    assert [(t["name"], t["score"], t.get("output")) for t in second_results["tests"]] == \
        [(t["name"], t["score"], t.get("output")) for t in first_results["tests"]]
    assert second_results["score"] == first_results["score"] > 0


def test_a_probes_input_is_computed_once_and_kept_with_the_results(tmp_path):
    """What a suite compares a skip test's output with: the probes' own input, made on the trusted side once per
    suite version (then read from the cache, without torch)."""
    from grader.worker.probes import make_input

    folder = course(tmp_path / "course")
    spec = load_spec(folder)
    with GradingSession(spec, cache_folder=tmp_path / "cache") as session:
        x = session.reference.probe_input([2, 3, 4, 4])
        computed = session.reference.computed
        assert np.array_equal(session.reference.probe_input([2, 3, 4, 4]), x)
        assert session.reference.computed == computed   # memoised
    assert x.dtype == np.float64 and np.array_equal(x, make_input([2, 3, 4, 4]).numpy())
    with GradingSession(spec, cache_folder=tmp_path / "cache") as again:
        assert np.array_equal(again.reference.probe_input([2, 3, 4, 4]), x) and again.reference.computed == 0
