"""The student release: what students download for an assignment.

``build_release`` assembles ``<out_dir>/<id>/`` and ``<out_dir>/<id>.zip`` from
the committed skeleton (never from the reference), the assignment's public tests
and a short README. The release holds:

- the skeleton's ``*.py`` files, which students fill in;
- ``test_*.py`` from the spec's ``public_tests`` folder, which import the
  student's modules by plain module name (``import resnet``);
- a ``conftest.py`` that puts the release folder first on ``sys.path`` and a
  ``pytest.ini`` that makes the folder pytest's root, so ``pytest`` run inside
  it finds the student's modules;
- ``README.md``: what to implement, file by file, and how to run the tests.

Hidden tests, the reference solution and anything else in the course folder are
never read. A skeleton that is out of date with the reference, or any file that
still carries a solution marker, stops the build.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from grader.spec import AssignmentSpec


class ReleaseError(Exception):
    """The release cannot be built; nothing was written."""


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

_CONFTEST = '''"""Make the modules in this folder importable by name (``import resnet``) from the tests."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
'''

_PYTEST_INI = """[pytest]
testpaths = .
addopts = -q
"""


def _readme(spec: AssignmentSpec, skeleton_files: list[str], public_tests: list[str]) -> str:
    lines = [
        f"# {spec.title}",
        "",
        "Fill in the files of this folder. Every place you have to write code says",
        '`raise NotImplementedError("TODO: ...")`: replace that line with your',
        "implementation, guided by the hint and the docstring above it. Keep the",
        "names and signatures of classes, methods and functions as they are: the",
        "grader calls them exactly like that. Attribute names, `nn.Sequential` or",
        "separate layers, `F.relu` or `nn.ReLU` are your choice.",
        "",
        "## What to implement",
        "",
    ]
    by_file: dict[str, list[str]] = {}
    for target in spec.targets:
        by_file.setdefault(target.file, []).append(f"`{target.name}` ({target.kind})")
    ordered = [f for f in spec.files if f in skeleton_files] + [f for f in skeleton_files if f not in spec.files]
    for name in ordered:
        if name in by_file:
            lines.append(f"- `{name}`: {', '.join(by_file[name])}")
    lines += [
        "",
        "## Check your work",
        "",
        "From this folder, with PyTorch and pytest installed:",
        "",
        "```",
        "python -m pytest",
        "```",
        "",
    ]
    if public_tests:
        lines += [
            f"The public tests ({', '.join(f'`{t}`' for t in public_tests)}) are a first check only:",
            "the grader runs more tests, and passing these does not guarantee full marks.",
        ]
    else:
        lines += [
            "This release has no public tests yet; `python -m pytest` then reports that",
            "no tests ran. Try your modules in Python directly, e.g.",
            "`python -c \"import resnet; print(resnet.ResidualBlock(64, 128, 2))\"`.",
        ]
    lines += ["", "Hand in the filled-in `.py` files of this folder."]
    if spec.notebook.accept:
        lines += [
            "",
            "Working in Jupyter? You may hand in your notebook (`.ipynb`) instead, or beside the files.",
            "The grader reads its code cells without running them: imports, classes, functions and",
            "constants go into the files above (each class or function into its own file); training",
            "loops, plots and shell commands are left out. A `.py` file you changed counts over the",
            "notebook. Your report lists which cells were taken and which were left out, and why.",
        ]
    lines.append("")
    return "\n".join(lines)


def _contents(spec: AssignmentSpec) -> dict[str, bytes]:
    from grader.authoring.skeleton import BEGIN, END, SkeletonError, check

    try:
        stale = check(spec.reference, spec.skeleton)
    except SkeletonError as e:
        raise ReleaseError(f"cannot check the skeleton against the reference: {e}") from None
    if stale:
        raise ReleaseError(
            f"the skeleton of {spec.id} is out of date ({stale[0]}); run `grader skeleton --assignment {spec.id}` first"
        )
    files: dict[str, bytes] = {}
    skeleton_files = sorted(p.name for p in spec.skeleton.glob("*.py") if p.is_file())
    for name in skeleton_files:
        files[name] = (spec.skeleton / name).read_bytes()
    public_tests = sorted(p.name for p in spec.public_tests.glob("test_*.py") if p.is_file())
    for name in public_tests:
        if name in files:
            raise ReleaseError(f"public test {name} has the name of a skeleton file")
        files[name] = (spec.public_tests / name).read_bytes()
    files["conftest.py"] = _CONFTEST.encode()
    files["pytest.ini"] = _PYTEST_INI.encode()
    files["README.md"] = _readme(spec, skeleton_files, public_tests).encode()
    for name, data in files.items():
        text = data.decode("utf-8", errors="replace")
        if BEGIN in text or END in text:
            raise ReleaseError(f"{name} contains a solution marker; it must not be released")
    return files


def build_release(spec: AssignmentSpec, out_dir: str | Path) -> Path:
    """Build the student release of ``spec`` in ``out_dir`` and return the zip's path.

    Writes the folder ``out_dir/<id>/`` (replacing an earlier release there) and
    ``out_dir/<id>.zip``, whose entries sit under ``<id>/`` and carry a fixed
    date, so the same inputs give the same zip byte for byte.

    Raises:
        ReleaseError: the skeleton is out of date or a file carries a solution marker.
    """
    files = _contents(spec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder = out / spec.id
    zip_path = out / f"{spec.id}.zip"

    staging = Path(tempfile.mkdtemp(dir=out, prefix=f".{spec.id}-"))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        tmp_zip = staging / f"{spec.id}.zip.tmp"
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(files):
                info = zipfile.ZipInfo(f"{spec.id}/{name}", date_time=_ZIP_DATE)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, files[name])
        tmp_zip.replace(zip_path)
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return zip_path
