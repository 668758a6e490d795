"""`grader export gradescope`: the autograder zip, unpacked into a Gradescope-like root and run.

The simulation mimics Gradescope's layout (ROOT/source holds the unzipped bundle,
ROOT/run_autograder, ROOT/submission, ROOT/results), runs setup.sh with
GRADER_SETUP_SKIP_PIP=1 (nothing is downloaded), installs the grader from the
bundle's own copy of the source (no dependencies: torch comes from this venv) and
runs run_autograder once per demo student. Its results.json must equal the one
`grader run` writes for the same folder, timing aside.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from grader import cli
from grader.grading.refcache import ReferenceCache
from grader.integrations import gradescope
from grader.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
MINICOURSE = ROOT / "tests" / "fixtures" / "minicourse"
REFERENCE = (MINICOURSE / "reference" / "blocks.py").read_text(encoding="utf-8")



def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
    return buffer.getvalue()


STUDENTS = {
    "good": {"blocks.py": REFERENCE},
    "noskip": {"blocks.py": REFERENCE.replace("F.relu(self.conv(x)) + x", "F.relu(self.conv(x))")},
    "broken": {"blocks.py": "import torch\nclass SkipBlock(:\n"},
    "empty": {"README.txt": "forgot the code\n"},
    # uploaded as a folder, or as a zip: read as `grader run` reads the same folder
    "nested": {"mini/blocks.py": REFERENCE, "mini/notes.txt": "uploaded as a folder\n"},
    "zipped": {"hw.zip": zipped({"hw/blocks.py": REFERENCE, "hw/../../escape.py": "x = 1\n"})},
}


def write_folder(folder: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (folder / rel).write_bytes(content)
        else:
            (folder / rel).write_text(content, encoding="utf-8")
    return folder


def copy_minicourse(dest: Path) -> Path:
    shutil.copytree(MINICOURSE, dest)
    (dest / "public").mkdir(exist_ok=True)  # an empty folder the spec names; git does not keep it
    return dest


def unpack_like_gradescope(bundle: Path, root: Path) -> Path:
    """Unzip into ROOT/source keeping the modes, and put run_autograder at ROOT, as Gradescope does."""
    source = root / "source"
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            target = source / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def without_timing(results: dict) -> dict:
    """Everything but what is measured at run time: the timing, and the sandbox's memory limit
    (the zygote's own size, measured when it starts, plus the spec's allowance)."""
    out = {k: v for k, v in results.items() if k != "execution_time"}
    out["output"] = re.sub(r"memory<= \d+ MiB", "memory<= N MiB", out["output"])
    return out


@pytest.fixture(scope="module")
def courses(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("courses")
    copy_minicourse(base / "mini")
    return base


@pytest.fixture(scope="module")
def bundle(courses, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADER_COURSES", str(courses))
        assert cli.main(["export", "gradescope", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def gradescope_root(bundle, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """An unpacked root after setup.sh, and the environment run_autograder runs with."""
    root = unpack_like_gradescope(bundle, tmp_path_factory.mktemp("gs") / "autograder")
    site = root.parent / "site-packages"
    # setup.sh's `pip install $SRC/grader-src`, without dependencies or network
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(root / "source" / "grader-src")], check=True, timeout=300)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable, "PYTHONPATH": str(site),
           "GRADER_SETUP_SKIP_PIP": "1"}
    env.pop("GRADER_COURSES", None)
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stderr
    assert "nothing installed" in setup.stdout
    return root, env


@pytest.fixture(scope="module")
def grader_run(courses, tmp_path_factory) -> Path:
    """`grader run` over the demo students (flat folders), as the instructor would run it."""
    base = tmp_path_factory.mktemp("students")
    folders = [write_folder(base / sid, files) for sid, files in STUDENTS.items()]
    out = base.parent / "out"
    env = {**os.environ, "GRADER_COURSES": str(courses)}
    run = subprocess.run([sys.executable, "-m", "grader", "run", *map(str, folders), "--out", str(out), "--jobs", "1",
                          "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return out


def run_autograder(root: Path, env: dict[str, str], files: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict]:
    shutil.rmtree(root / "submission")
    shutil.rmtree(root / "results")
    (root / "submission").mkdir()
    write_folder(root / "submission", files)
    (root / "results").mkdir()
    done = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=300)
    return done, json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the simulation


@pytest.mark.parametrize("student", list(STUDENTS))
def test_run_autograder_equals_grader_run(gradescope_root, grader_run, courses, student):
    root, env = gradescope_root
    done, got = run_autograder(root, env, STUDENTS[student])
    assert done.returncode == 0, done.stderr
    want = json.loads((grader_run / student / "results.json").read_text(encoding="utf-8"))
    assert without_timing(got) == without_timing(want)
    assert [t["status"] for t in got["tests"]] == [t["status"] for t in want["tests"]]
    if student in ("good", "nested", "zipped"):
        assert got["score"] == got["max_score"] == 10
    else:
        assert got["score"] < 10
    spec = load_spec(courses / "mini")
    for test in got["tests"]:  # visibility follows the spec's rubric
        target, category = test["tags"]
        assert test["visibility"] == ("visible" if spec.rubric_item(target, category).visible else "hidden")
    if student == "zipped":  # the unsafe zip entry was left out, and the result says so
        assert "left out" in got["output"] or "escape.py" in got["output"]
    if student != "empty":   # the reference's results came with the bundle: none was computed again
        found = re.search(r"reference results: (\d+) from the bundle, (\d+) computed", done.stdout)
        assert found and int(found[1]) > 0 and found[2] == "0", done.stdout


def test_the_student_never_sees_the_bundle(gradescope_root):
    """Student code runs in the sandbox: /autograder (hidden tests, reference, results) is not in its view."""
    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    root, env = gradescope_root
    probe = textwrap.dedent(f'''
        import os
        def double(x):
            seen = [p for p in ({str(root)!r}, {str(root / "source" / "course")!r}, {str(root / "results")!r}) if os.path.exists(p)]
            return 42 if not seen and os.getuid() == 65534 else -1
    ''')
    done, got = run_autograder(root, env, {"blocks.py": REFERENCE.split("def double")[0] + probe})
    assert done.returncode == 0, done.stderr
    if "bubblewrap" not in done.stdout:   # run_autograder's own output names the isolation, for the instructor
        pytest.skip("bubblewrap is not usable here")
    (double,) = [t for t in got["tests"] if t["tags"][0] == "double"]
    assert double["status"] == "passed", double["output"]


def test_a_run_past_the_suite_budget_fails_the_remaining_tests(gradescope_root):
    root, env = gradescope_root
    config_path = root / "source" / gradescope.BUNDLE_CONFIG
    saved = config_path.read_text()
    config = json.loads(saved)
    config["last_test_start_s"] = 0  # the suite's time is already used up when grading begins
    config_path.write_text(json.dumps(config))
    try:
        done, got = run_autograder(root, env, STUDENTS["good"])
    finally:
        config_path.write_text(saved)
    assert done.returncode == 0, done.stderr
    assert got["score"] == 0 and got["tests"]
    assert all("time limit was used up" in t["output"] for t in got["tests"])


def test_the_watchdog_writes_results_before_gradescope_kills_the_run(gradescope_root):
    root, env = gradescope_root
    config_path = root / "source" / gradescope.BUNDLE_CONFIG
    saved = config_path.read_text()
    config = json.loads(saved)
    config["hard_end_s"] = 0.2
    config_path.write_text(json.dumps(config))
    try:
        done, got = run_autograder(root, env, STUDENTS["good"])
    finally:
        config_path.write_text(saved)
    assert done.returncode == 3
    assert got["score"] == 0 and got["tests"] == []
    assert "time limit" in got["output"]


def test_an_internal_failure_still_writes_results(gradescope_root):
    root, env = gradescope_root
    spec_path = root / "source" / json.loads((root / "source" / gradescope.BUNDLE_CONFIG).read_text())["spec"]
    saved = spec_path.read_bytes()
    spec_path.write_text("id = 'broken'\n")
    try:
        done, got = run_autograder(root, env, STUDENTS["good"])
    finally:
        spec_path.write_bytes(saved)
    assert done.returncode == 1
    assert got["score"] == 0 and "not your fault" in got["output"]
    assert "SpecError" in done.stderr


# ---------------------------------------------------------------- the zip itself


def test_zip_layout(bundle):
    with zipfile.ZipFile(bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        config = json.loads(zf.read(gradescope.BUNDLE_CONFIG))
        setup = zf.read("setup.sh").decode()
        spec_bytes = zf.read(config["spec"])
    for script in ("setup.sh", "run_autograder"):
        assert (infos[script].external_attr >> 16) & 0o111, f"{script} is not executable"
    assert "course/hidden/test_blocks.py" in infos and "course/reference/blocks.py" in infos
    assert "course/public/" in infos  # empty folders the spec names still exist
    assert "grader-src/pyproject.toml" in infos and "grader-src/grader/grading/engine.py" in infos
    assert "grader-src/grader/grading/suite.ini" in infos
    assert not [n for n in infos if "__pycache__" in n or n.startswith(("tests/", ".venv"))]
    assert spec_bytes == (MINICOURSE / "assignment.toml").read_bytes()
    assert config["assignment"] == "mini"
    assert config["gradescope_timeout_s"] == gradescope.fitting_timeout(load_spec(MINICOURSE).limits)
    assert "download.pytorch.org/whl/cpu" in setup and "GRADER_SETUP_SKIP_PIP" in setup
    # the reference's results for this suite version, computed at export (no GPU, as on Gradescope)
    shipped = [n for n in infos if n.startswith(gradescope.REFERENCE_RESULTS + "/") and n.endswith(".npz")]
    assert len(shipped) == 1
    with zipfile.ZipFile(bundle) as zf, zipfile.ZipFile(io.BytesIO(zf.read(shipped[0]))) as results:
        meta = json.loads(results.read("meta.json"))
    assert meta["key"] == ReferenceCache(load_spec(MINICOURSE), gpu=False).key
    assert meta["complete"] is True and meta["gpu"] is False


def test_zip_is_reproducible(courses, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_COURSES", str(courses))
    for name in ("one.zip", "two.zip"):
        assert cli.main(["export", "gradescope", "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_folders_outside_the_course_keep_their_place(tmp_path, monkeypatch):
    """day09's spec points at ../../reference/day09: the zip keeps that layout and the spec unchanged."""
    repo = tmp_path / "repo"
    course = copy_minicourse(repo / "courses" / "mini")
    shutil.move(str(course / "reference"), str(repo / "reference" / "mini"))
    toml = (course / "assignment.toml").read_text().replace('reference = "reference"', 'reference = "../../reference/mini"')
    (course / "assignment.toml").write_text(toml)
    monkeypatch.setenv("GRADER_COURSES", str(repo / "courses"))
    out = tmp_path / "b.zip"
    assert cli.main(["export", "gradescope", "--out", str(out)]) == 0
    root = unpack_like_gradescope(out, tmp_path / "gs")
    config = json.loads((root / "source" / gradescope.BUNDLE_CONFIG).read_text())
    assert config["spec"] == "course/courses/mini/assignment.toml"
    spec = load_spec(root / "source" / config["spec"])
    assert spec.reference == (root / "source" / "course" / "reference" / "mini").resolve()
    assert (spec.reference / "blocks.py").is_file()


def test_a_timeout_too_short_for_the_suite_is_refused(bundle, courses, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRADER_COURSES", str(courses))
    assert cli.main(["export", "gradescope", "--out", str(tmp_path / "a.zip"), "--timeout", "60"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "raise the assignment's timeout" in err
    assert not (tmp_path / "a.zip").exists()
    # shorter than the spec's submission_timeout_s (120 s) plus start-up: a warning, and the zip
    assert cli.main(["export", "gradescope", "--out", str(tmp_path / "b.zip"), "--timeout", "200"]) == 0
    assert "warning" in capsys.readouterr().err
    assert (tmp_path / "b.zip").is_file()


def test_defaults_fit_the_spec_without_a_warning(courses, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRADER_COURSES", str(courses))
    assert cli.main(["export", "gradescope", "-o", str(tmp_path / "a.zip")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err
    limits = load_spec(MINICOURSE).limits
    fitting = gradescope.fitting_timeout(limits)
    assert fitting % 60 == 0 and f"autograder timeout on Gradescope to {fitting:g} s" in err
    plan = gradescope.time_plan(limits, fitting)
    assert plan["last_test_start_s"] - gradescope.STARTUP_ESTIMATE_S >= limits.submission_timeout_s
    assert gradescope.fitting_timeout(load_spec(ROOT / "courses" / "day09").limits) == 1080   # 900 s of suite + 160


def test_unknown_assignment_is_a_usage_error(courses, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRADER_COURSES", str(courses))
    assert cli.main(["export", "gradescope", "--assignment", "nope", "--out", str(tmp_path / "x.zip")]) == 2
    assert "unknown assignment" in capsys.readouterr().err


def test_time_plan_leaves_room_for_one_worst_case_test(courses):
    spec = load_spec(courses / "mini")
    plan = gradescope.time_plan(spec.limits, 600)
    worst = spec.limits.import_timeout_s + 2 * spec.limits.request_timeout_s
    assert plan["hard_end_s"] == 600 - gradescope.HARD_MARGIN_S
    assert plan["last_test_start_s"] == plan["hard_end_s"] - worst


# ---------------------------------------------------------------- the demo class (day09)


def _day09():
    try:
        return load_spec(ROOT / "courses" / "day09")
    except Exception:  # noqa: BLE001 - not finished yet
        return None


@pytest.mark.slow
def test_day09_demo_class_equals_grader_run(tmp_path):
    spec = _day09()
    demo = sorted(p for p in (ROOT / "submissions").glob("*") if p.is_dir()) if (ROOT / "submissions").is_dir() else []
    assert spec is not None and demo and any(spec.hidden_tests.glob("test_*.py"))
    env = {**os.environ, "GRADER_COURSES": str(ROOT / "courses")}
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "grader", "run", *map(str, demo), "--out", str(out), "--quiet",
                          "--assignment", "day09"], env=env, capture_output=True, text=True, timeout=3000)
    assert run.returncode == 0, run.stderr
    bundle = tmp_path / "day09.zip"
    export = subprocess.run([sys.executable, "-m", "grader", "export", "gradescope", "--assignment", "day09",
                             "--timeout", "2400", "--out", str(bundle)], env=env, capture_output=True, text=True, timeout=120)
    assert export.returncode == 0, export.stderr
    root = unpack_like_gradescope(bundle, tmp_path / "autograder")
    gs_env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable}
    gs_env.pop("GRADER_COURSES", None)
    for folder in demo:
        shutil.rmtree(root / "submission")
        shutil.copytree(folder, root / "submission")
        done = subprocess.run([str(root / "run_autograder")], env=gs_env, capture_output=True, text=True, timeout=2400)
        assert done.returncode == 0, done.stderr
        got = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
        want = json.loads((out / folder.name / "results.json").read_text(encoding="utf-8"))
        assert without_timing(got) == without_timing(want), folder.name
