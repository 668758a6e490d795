"""Gradescope: build the autograder zip (``grader export gradescope``) and run it there.

The zip holds, at its root:

- ``setup.sh``: run once by Gradescope (as root, with network) to build the image:
  bubblewrap from apt, a Python >= 3.11 virtual environment at
  ``$AUTOGRADER_ROOT/venv`` with CPU torch from PyTorch's CPU wheel index and this grader
  installed from the source copied into the zip;
- ``run_autograder``: run once per submission; it grades
  ``$AUTOGRADER_ROOT/submission`` with the same engine as ``grader run`` and writes
  ``$AUTOGRADER_ROOT/results/results.json``;
- ``grader-src/``: the grader's source (pyproject.toml and grader/);
- ``course/``: the assignment's folder (spec, hidden suite, reference, skeleton),
  with any folder the spec points to outside it, at the same relative places so
  the spec is copied byte for byte;
- ``grader-bundle.json``: which spec to load and the time budget;
- ``requirements-gradescope.txt``: the torch/torchvision pins setup.sh installs;
- ``reference-results/``: the reference's probe results (``grader.grading.refcache``),
  computed when the bundle is built (grading the reference, no GPU, as in
  Gradescope's containers), so that no submission computes them again.

Gradescope unzips into ``/autograder/source``; the student's sandbox sees
nothing under ``/autograder`` (bubblewrap binds only the system, Python and the
worker package), so the hidden suite and the reference stay out of its view.

Time: Gradescope stops ``run_autograder`` at the assignment's timeout and then
records nothing, so the run keeps inside it. With ``T`` the timeout given at
export (``--timeout``, Gradescope's setting; by default ``fitting_timeout``, the
shortest whole number of minutes that holds the spec's suite), the run ends by ``T - HARD_MARGIN_S``
after ``run_autograder`` started, whatever happens. The last hidden test may start
at ``T - HARD_MARGIN_S - (import_timeout_s + 2 * request_timeout_s)`` (one import
and two timed-out requests still fit) and never later than ``submission_timeout_s``
after grading began; tests that would start after that score 0 with "the
submission's total time limit was used up". Each request keeps the spec's own
``request_timeout_s`` (or the test's ``grade(timeout=...)``).

Environment (for a local simulation, and for operators):
``AUTOGRADER_ROOT`` (default ``/autograder``), ``GRADER_PYTHON`` (the interpreter
``run_autograder`` uses; default ``$AUTOGRADER_ROOT/venv/bin/python``),
``GRADER_SETUP_SKIP_PIP=1`` (setup.sh installs nothing and only checks that
``grader`` and ``torch`` import with ``GRADER_PYTHON``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import grader
from grader.points import points_text

BUNDLE_CONFIG = "grader-bundle.json"
REFERENCE_RESULTS = "reference-results"
REQUIREMENTS = "requirements-gradescope.txt"
BUNDLE_FORMAT = 1
GRADESCOPE_DEFAULT_TIMEOUT_S = 600   # what Gradescope sets unless the instructor raises it
HARD_MARGIN_S = 20               # kept back at the end: results are written and the run has ended
STARTUP_ESTIMATE_S = 60          # torch import, reference load and sandbox start on a 0.5-1 vCPU container
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".git", ".mypy_cache", ".ruff_cache"}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same zip


class BundleError(Exception):
    """The bundle cannot be built (message for the user)."""


# ---------------------------------------------------------------- building the zip


@dataclass
class BundleReport:
    path: Path
    files: int
    bytes: int
    spec_path: str
    suite_budget_s: float
    warnings: list[str]
    timeout_s: float


def project_source() -> Path:
    """The checkout this grader runs from: pyproject.toml beside grader/."""
    package = Path(grader.__file__).resolve().parent
    root = package.parent
    if not (root / "pyproject.toml").is_file():
        raise BundleError(f"the grader at {package} is not a source checkout (no pyproject.toml beside grader/); "
                          "build the bundle from a checkout of the grader")
    return root


def _tree(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not p.is_symlink() and not SKIP_PARTS.intersection(p.relative_to(folder).parts)
                  and not p.name.endswith((".pyc", ".pyo")) and ".egg-info" not in str(p.relative_to(folder)))


def course_layout(spec: Any) -> tuple[dict[str, Path | None], str]:
    """Zip paths under ``course/`` for the assignment folder and every folder its spec names.

    Folders outside the assignment folder (day09's reference lives in
    ``../../reference/day09``) keep their place relative to it, so the spec file
    is copied unchanged. Returns ({zip path: source file, or None for a folder
    entry}, zip path of the spec).
    """
    root = Path(spec.root).resolve()
    folders = [root] + [Path(getattr(spec, f)).resolve() for f in ("reference", "skeleton", "hidden_tests", "public_tests")]
    base = Path(os.path.commonpath([str(f) for f in folders]))
    files: dict[str, Path | None] = {}
    for folder in folders:
        # every named folder is listed even when empty (the spec requires it to exist)
        files[f"course/{folder.relative_to(base).as_posix()}/".replace("/./", "/")] = None
        if folder != root and folder.is_relative_to(root):
            continue  # its files are copied with the assignment folder
        for path in _tree(folder):
            files[f"course/{path.relative_to(base).as_posix()}"] = path
    spec_rel = (root / "assignment.toml").relative_to(base).as_posix()
    return files, f"course/{spec_rel}"


def fitting_timeout(limits: Any) -> float:
    """The shortest Gradescope timeout, in whole minutes, that holds the spec's whole suite: start-up, the
    spec's ``submission_timeout_s``, one worst-case test and the margin. The export's default, so a bundle
    built without ``--timeout`` never cuts the suite short; the instructor sets it on Gradescope."""
    per_test = limits.import_timeout_s + 2 * limits.request_timeout_s
    needed = STARTUP_ESTIMATE_S + limits.submission_timeout_s + per_test + HARD_MARGIN_S
    return float(math.ceil(needed / 60) * 60)


def time_plan(limits: Any, timeout_s: float) -> dict[str, float]:
    """The budget ``run_autograder`` keeps to (see the module docstring)."""
    per_test = limits.import_timeout_s + 2 * limits.request_timeout_s
    return {"hard_end_s": timeout_s - HARD_MARGIN_S, "last_test_start_s": timeout_s - HARD_MARGIN_S - per_test,
            "per_test_worst_s": per_test}


def _pins() -> list[str]:
    pins = []
    for dist in ("torch", "torchvision"):
        try:
            pins.append(f"{dist}=={metadata.version(dist).split('+')[0]}")
        except metadata.PackageNotFoundError:
            pins.append(dist)
    return pins


def reference_results(spec: Any) -> Path:
    """The cache file with the reference's results for a run without the GPU, computed when missing.

    It is complete when it was written after grading the reference itself (every probe a correct
    submission asks for); if the cache on disk is not, the reference is graded here once.
    """
    from grader.grading.refcache import ReferenceCache

    cache = ReferenceCache(spec, gpu=False)
    cache.load()
    if not cache.complete:
        from grader.grading.engine import GradingSession

        with GradingSession(spec, gpu=False) as session:
            session.grade(Path(spec.reference), "reference")
            cache = session.reference_cache
    if not cache.complete or not cache.path.is_file():
        raise BundleError(f"the reference's results could not be computed and kept in {cache.folder} "
                          f"({cache.problem or 'not written'}); set GRADER_CACHE_DIR to a writable folder")
    return cache.path


def bundle_entries(spec: Any, timeout_s: float) -> tuple[dict[str, bytes | Path | None], dict[str, Any]]:
    """Everything the zip holds: {zip path: bytes, a source file or None for a folder}, and the bundle config."""
    source = project_source()
    entries: dict[str, bytes | Path | None] = {}
    entries["grader-src/pyproject.toml"] = source / "pyproject.toml"
    readme = source / "README.md"
    entries["grader-src/README.md"] = readme if readme.is_file() else b"# cnn-grader\n"
    package = source / "grader"
    for path in _tree(package):
        entries[f"grader-src/grader/{path.relative_to(package).as_posix()}"] = path
    course_files, spec_path = course_layout(spec)
    entries.update(course_files)
    plan = time_plan(spec.limits, timeout_s)
    config = {
        "format": BUNDLE_FORMAT,
        "assignment": spec.id,
        "spec": spec_path,
        "grader_version": grader.__version__,
        "gradescope_timeout_s": timeout_s,
        "hard_margin_s": HARD_MARGIN_S,
        **plan,
    }
    entries[BUNDLE_CONFIG] = (json.dumps(config, indent=1) + "\n").encode()
    entries[REQUIREMENTS] = ("# installed by setup.sh from " + TORCH_INDEX + " (CPU wheels); edit to change\n"
                             + "\n".join(_pins()) + "\n").encode()
    entries["setup.sh"] = SCRIPTS["setup.sh"].encode()
    entries["run_autograder"] = SCRIPTS["run_autograder"].encode()
    results = reference_results(spec)
    entries[f"{REFERENCE_RESULTS}/{results.name}"] = results.read_bytes()
    return entries, config


def build_bundle(spec: Any, out: Path, timeout_s: float | None = None) -> BundleReport:
    """Write the zip; ``timeout_s`` is the timeout set on Gradescope (default: ``fitting_timeout``)."""
    timeout_s = fitting_timeout(spec.limits) if timeout_s is None else timeout_s
    if timeout_s <= 0:
        raise BundleError("--timeout must be positive")
    plan = time_plan(spec.limits, timeout_s)
    budget = plan["last_test_start_s"] - STARTUP_ESTIMATE_S
    if budget < 30:
        raise BundleError(
            f"a Gradescope timeout of {timeout_s:g} s leaves {budget:.0f} s for the hidden suite after start-up "
            f"({STARTUP_ESTIMATE_S} s), the {HARD_MARGIN_S} s margin and one worst-case test "
            f"({plan['per_test_worst_s']:g} s); raise the assignment's timeout on Gradescope and pass it with --timeout")
    warnings = []
    if budget < spec.limits.submission_timeout_s:
        warnings.append(
            f"Gradescope's timeout ({timeout_s:g} s) is shorter than the spec's submission_timeout_s "
            f"({spec.limits.submission_timeout_s:g} s) plus start-up and margins: hidden tests that would start more than "
            f"about {budget:.0f} s into grading score 0; raise the timeout on Gradescope to at least "
            f"{spec.limits.submission_timeout_s + STARTUP_ESTIMATE_S + HARD_MARGIN_S + plan['per_test_worst_s']:.0f} s "
            "and pass it with --timeout")
    entries, config = bundle_entries(spec, timeout_s)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    total = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(entries):
                value = entries[name]
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                if value is None:
                    info.external_attr = (0o40755 << 16) | 0x10
                    zf.writestr(info, b"")
                    continue
                data = value if isinstance(value, bytes) else value.read_bytes()
                executable = name in ("setup.sh", "run_autograder")
                info.external_attr = (0o100755 if executable else 0o100644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
                total += len(data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BundleReport(path=out, files=sum(v is not None for v in entries.values()), bytes=total, spec_path=config["spec"],
                        suite_budget_s=min(budget, spec.limits.submission_timeout_s), warnings=warnings,
                        timeout_s=timeout_s)


# ---------------------------------------------------------------- `grader export gradescope`

EXPORT_HELP = "the Gradescope autograder zip (setup.sh, run_autograder, the grader and the assignment)"


def export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--assignment", default=None, help="assignment id (default: the only one there is)")
    parser.add_argument("-o", "--out", required=True, metavar="FILE.zip", help="where to write the zip")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="the autograder timeout set on Gradescope; the run keeps inside it (default: the "
                             "shortest whole number of minutes that holds the spec's submission_timeout_s with "
                             f"start-up and margins; Gradescope's own default is {GRADESCOPE_DEFAULT_TIMEOUT_S} s)")


def export_run(args: argparse.Namespace) -> int:
    from grader.cli import UsageError
    from grader.spec import find_spec

    spec = find_spec(args.assignment)
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {args.out}: is a folder; give a file name such as autograder.zip")
    try:
        report = build_bundle(spec, out, timeout_s=args.timeout)
    except BundleError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"--out {args.out}: cannot write: {e.strerror or e}") from None
    for warning in report.warnings:
        print(f"grader export gradescope: warning: {warning}", file=sys.stderr)
    print(f"{report.path}: {report.files} files, {report.bytes / 1e6:.1f} MB unpacked; assignment {spec.id}; "
          f"hidden tests may start up to {report.suite_budget_s:.0f} s into grading", file=sys.stderr)
    print(f"set the assignment's autograder timeout on Gradescope to {report.timeout_s:g} s "
          f"({report.timeout_s / 60:g} min)" + (" (Gradescope's default is shorter)"
                                                  if report.timeout_s > GRADESCOPE_DEFAULT_TIMEOUT_S else ""),
          file=sys.stderr)
    return 0


# ---------------------------------------------------------------- inside Gradescope: run_autograder


def _failure_results(message: str) -> dict[str, Any]:
    return {"score": 0, "execution_time": 0, "output": message, "visibility": "visible",
            "stdout_visibility": "hidden", "tests": []}


def _write_results(results_dir: Path, payload: dict[str, Any]) -> None:
    from grader.results import write_atomic

    write_atomic(results_dir / "results.json", json.dumps(payload, indent=1))


def run_autograder(root: Path, started_at: float | None = None) -> int:
    """Grade ``root/submission`` into ``root/results/results.json``; 0 when a result was graded."""
    started_at = started_at if started_at is not None else time.time()
    source, results_dir = root / "source", root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((source / BUNDLE_CONFIG).read_text(encoding="utf-8"))
    timeout_s = float(config["gradescope_timeout_s"])
    hard_end = started_at + float(config["hard_end_s"])
    done = threading.Event()
    lock = threading.Lock()

    def watchdog() -> None:
        if done.wait(max(0.0, hard_end - time.time())):
            return
        with lock:
            if done.is_set():
                return
            _write_results(results_dir, _failure_results(
                f"Grading did not finish within the autograder's time limit ({timeout_s:g} s). Unless your code is "
                "very slow this is not a problem with your submission; your instructor can regrade it with a longer "
                "limit."))
            print("run_autograder: stopped at the time limit; results.json says so", file=sys.stderr, flush=True)
            os._exit(3)

    threading.Thread(target=watchdog, daemon=True, name="gradescope-watchdog").start()
    try:
        from grader.classrun.executors.local import lanes_for_one, threads_per_worker
        from grader.classrun.planning import has_gradable_file, nothing_to_grade, read_as_graded
        from grader.grading.sandbox import Sandbox, SandboxConfig
        from grader.intake.ingest import Ingest
        from grader.spec import load_spec

        spec = load_spec(source / config["spec"])
        # The container's CPUs serve one submission as `grader run` serves one: one torch thread per sandbox
        # and the suite split into lanes, one sandbox each. This process imports torch only to compute a
        # reference result the bundle's cache lacks.
        threads = threads_per_worker()
        boxes: list[Sandbox] = []
        try:
            for _ in range(lanes_for_one(threads, gpu=False)):
                boxes.append(Sandbox(SandboxConfig.for_spec(spec, threads=threads), wait=False))
        except Exception:  # noqa: BLE001 - fewer lanes; with none, the session starts its sandbox and says why
            pass
        from grader.grading.engine import GradingSession

        with tempfile.TemporaryDirectory(prefix="grader-ingest-") as staging, \
                GradingSession(spec, threads=threads, cache_folder=source / REFERENCE_RESULTS,
                               sandbox=boxes[0] if boxes else None, lanes=boxes[1:]) as session:
            loaded = len(session.reference.memo)
            # what `grader run` does with one student's folder: a lone sub-folder is looked into, a lone zip unpacked
            incoming = Ingest(Path(staging)).student_folder(root / "submission", "submission", "submission")
            # the suite may start tests until the last moment that still leaves one worst-case test room
            last_start = started_at + float(config["last_test_start_s"])
            budget = min(spec.limits.submission_timeout_s, max(0.0, last_start - time.time()))
            session.spec = spec.model_copy(update={"limits": spec.limits.model_copy(update={"submission_timeout_s": budget})})
            if has_gradable_file(read_as_graded(incoming.folder, spec).files, spec):
                result = session.grade(incoming.folder, "submission")
                result.problems = list(incoming.problems) + list(result.problems)
                print(f"run_autograder: reference results: {loaded} from the bundle, "
                      f"{session.reference.computed} computed", flush=True)
            else:   # as `grader run` does: 0 and the reasons at once, no sandbox
                intake = read_as_graded(incoming.folder, spec)
                result = nothing_to_grade(spec, "submission", list(incoming.problems) + intake.problems, "")
                result.notebook = intake.notebook
        payload = result.to_gradescope()
    except BaseException as e:  # noqa: BLE001 - Gradescope must always get a results.json
        import traceback

        traceback.print_exc()
        with lock:
            done.set()
            _write_results(results_dir, _failure_results(
                f"The autograder itself failed ({type(e).__name__}); this is not your fault. "
                "Your instructor has the details in the autograder output."))
        return 1
    with lock:
        done.set()
        _write_results(results_dir, payload)
    print(f"run_autograder: {points_text(result.score)} / {points_text(result.max_score)} ({result.isolation})",
          flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.integrations.gradescope",
                                     description="Grade the Gradescope submission (run by run_autograder).")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT", "/autograder")))
    args = parser.parse_args(argv)
    started = os.environ.get("GRADER_STARTED_AT")
    try:
        started_at = float(started) if started else None
    except ValueError:
        started_at = None
    return run_autograder(args.root, started_at)


# ---------------------------------------------------------------- the two scripts

SCRIPTS = {
    "setup.sh": r"""#!/usr/bin/env bash
# Gradescope runs this once, as root with network, when it builds the autograder image.
# It installs bubblewrap (the student's sandbox), a Python >= 3.11 virtual environment
# at $AUTOGRADER_ROOT/venv with CPU torch and this grader. GRADER_SETUP_SKIP_PIP=1
# installs nothing and only checks that the interpreter in GRADER_PYTHON has what it needs.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
VENV="$ROOT/venv"

if [ "${GRADER_SETUP_SKIP_PIP:-0}" = 1 ]; then
  PY="${GRADER_PYTHON:-$VENV/bin/python}"
  "$PY" -c "import grader, torch" || { echo "setup.sh: GRADER_SETUP_SKIP_PIP=1 but $PY cannot import grader and torch" >&2; exit 1; }
  echo "setup.sh: nothing installed (GRADER_SETUP_SKIP_PIP=1); $PY has grader and torch"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
find_python() {
  for p in python3.13 python3.12 python3.11 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$p"; return 0
    fi
  done
  return 1
}
apt-get update -qq || true
apt-get install -y -qq bubblewrap >/dev/null || echo "setup.sh: bubblewrap could not be installed; student code will run with process isolation only" >&2
PY="$(find_python)" || {
  apt-get install -y -qq python3.11 python3.11-venv >/dev/null
  PY="$(find_python)"
}
if ! "$PY" -m venv "$VENV"; then
  ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  apt-get install -y -qq "python${ver}-venv" >/dev/null
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q --index-url https://download.pytorch.org/whl/cpu \
  --extra-index-url https://pypi.org/simple -r "$SRC/requirements-gradescope.txt"
"$VENV/bin/python" -m pip install -q "$SRC/grader-src"
"$VENV/bin/python" -c "import grader, torch; print('setup.sh: grader', grader.__version__, 'torch', torch.__version__)"
# the hidden suite and the reference are for root (the grader) only
chmod -R go-rwx "$SRC"
if bwrap --unshare-all --die-with-parent --uid 65534 --gid 65534 --ro-bind / / true 2>/dev/null; then
  echo "setup.sh: bubblewrap works here: student code runs as uid 65534 with no network and a private filesystem view"
else
  echo "setup.sh: WARNING: bubblewrap cannot create namespaces in this container; student code will run" \
       "with process isolation only (see docs/operations.md)" >&2
fi
""",
    "run_autograder": r"""#!/usr/bin/env bash
# Gradescope runs this once per submission: grade $AUTOGRADER_ROOT/submission into
# $AUTOGRADER_ROOT/results/results.json with the grader's engine (see grader-src/grader/integrations/gradescope.py).
set -u
export GRADER_STARTED_AT="$(date +%s.%N)"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${GRADER_PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
cd "$ROOT"
exec "$PY" -P -m grader.integrations.gradescope --root "$ROOT"
""",
}


if __name__ == "__main__":
    sys.exit(main())
