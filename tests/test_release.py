"""The student release: skeleton + public tests + conftest + README, as a folder and a valid zip,
with no reference code and no hidden test in it."""

from __future__ import annotations

import ast
import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.authoring.release import ReleaseError, build_release
from grader.spec import find_spec

ROOT = Path(__file__).resolve().parents[1]
MARKER_RE = re.compile(r"^\s*#\s*(BEGIN|END) SOLUTION\s*$")
TODO_RE = re.compile(r"^\s*#\s*TODO\b")


@pytest.fixture(scope="module")
def spec():
    return find_spec("day09")


@pytest.fixture(scope="module")
def release(spec, tmp_path_factory) -> Path:
    return build_release(spec, tmp_path_factory.mktemp("release"))


def solution_regions(source: str) -> list[tuple[int, int]]:
    """1-based (begin, end) marker lines of every solution region."""
    regions, start = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        m = MARKER_RE.match(line)
        if m and m.group(1) == "BEGIN":
            start = number
        elif m:
            regions.append((start, number))
    return regions


def solution_only_lines(reference: Path) -> set[str]:
    """Stripped code lines that occur inside solution regions and nowhere else in the reference."""
    inside, outside = set(), set()
    for path in reference.glob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        region_lines = {n for b, e in solution_regions("\n".join(lines)) for n in range(b, e + 1)}
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text or MARKER_RE.match(line) or TODO_RE.match(line):
                continue
            if len(text) < 16:   # "try:", "return x", "else:" reveal nothing
                continue
            (inside if number in region_lines else outside).add(text)
    return inside - outside


def solution_bodies(reference: Path) -> dict[str, str]:
    """``file:qualname`` -> ast.dump of the body, for every function holding a solution region."""
    found = {}
    for path in reference.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        regions = solution_regions(source)
        for qualname, node in functions(ast.parse(source)):
            if any(node.lineno < b <= (node.end_lineno or node.lineno) for b, _ in regions):
                found[f"{path.name}:{qualname}"] = ast.dump(ast.Module(body=node.body, type_ignores=[]))
    return found


def functions(tree: ast.AST, prefix: str = ""):
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, prefix + node.name + ".")


def test_release_is_a_valid_zip_matching_the_folder(spec, release):
    assert release.name == f"{spec.id}.zip"
    folder = release.parent / spec.id
    with zipfile.ZipFile(release) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert all(n.startswith(f"{spec.id}/") for n in names)
        assert sorted(n.split("/", 1)[1] for n in names) == sorted(p.name for p in folder.iterdir())
        for name in names:
            assert zf.read(name) == (folder / name.split("/", 1)[1]).read_bytes()


def test_release_contents(spec, release):
    folder = release.parent / spec.id
    names = {p.name for p in folder.iterdir()}
    expected = set(spec.files) | {"conftest.py", "pytest.ini", "README.md"}
    expected |= {p.name for p in spec.public_tests.glob("test_*.py")}
    assert names == expected
    for name in spec.files:
        assert (folder / name).read_bytes() == (spec.skeleton / name).read_bytes()
    readme = (folder / "README.md").read_text()
    assert "pytest" in readme
    for target in spec.targets:
        assert f"`{target.name}`" in readme
    assert "hand in your notebook (`.ipynb`)" in readme and "without running them" in readme


def test_the_release_readme_mentions_notebooks_only_where_the_spec_accepts_them(minicourse_copy, tmp_path):
    from grader.spec import load_spec

    toml = minicourse_copy / "assignment.toml"
    toml.write_text(toml.read_text() + "\n[notebook]\naccept = false\n")
    zip_path = build_release(load_spec(minicourse_copy), tmp_path / "out")
    readme = (zip_path.parent / "mini" / "README.md").read_text()
    assert "Hand in the filled-in `.py` files" in readme and ".ipynb" not in readme


def test_release_holds_no_reference_code(spec, release):
    folder = release.parent / spec.id
    secret_lines = solution_only_lines(spec.reference)
    assert len(secret_lines) > 100  # the reference really has solutions to hide
    bodies = solution_bodies(spec.reference)
    assert len(bodies) > 30
    for path in folder.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, path.name
        leaked = secret_lines & {line.strip() for line in text.splitlines()}
        assert not leaked, f"{path.name} contains reference solution lines: {sorted(leaked)[:3]}"
        if path.suffix == ".py":
            for qualname, node in functions(ast.parse(text)):
                body = ast.dump(ast.Module(body=node.body, type_ignores=[]))
                assert body not in bodies.values(), f"{path.name}:{qualname} has a reference solution body"
    for key in bodies:
        file, qualname = key.split(":")
        released = dict(functions(ast.parse((folder / file).read_text(encoding="utf-8"))))
        assert qualname in released, f"{key} is missing from the release"


def test_release_holds_no_hidden_test(spec, release):
    folder = release.parent / spec.id
    generated = {"conftest.py", "pytest.ini", "README.md"}  # written by build_release itself
    hidden = [p for p in spec.hidden_tests.rglob("*") if p.is_file() and p.name != ".gitkeep"
              and "__pycache__" not in p.parts]
    released = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert not {p.name for p in hidden} & (set(released) - generated)
    hidden_tests = set()
    for path in hidden:
        data = path.read_bytes()
        assert data not in released.values(), f"{path.name} is in the release"
        hidden_tests |= set(re.findall(rb"def (test_\w+)", data))
    for name, data in released.items():
        leaked = {t for t in hidden_tests if re.search(rb"\b" + t + rb"\b", data)}
        assert not leaked, f"{name} mentions hidden tests {sorted(leaked)[:3]}"
    with zipfile.ZipFile(release) as zf:
        assert not {p.name for p in hidden} & ({Path(n).name for n in zf.namelist()} - generated)


@pytest.fixture
def demo_spec(spec, tmp_path):
    """The real spec with its own hidden and public tests, to see which ones are released."""
    hidden, public = tmp_path / "hidden", tmp_path / "public"
    hidden.mkdir()
    public.mkdir()
    (hidden / "test_hidden_secret.py").write_text("SECRET = 'hidden-canary-7f3a'\n\ndef test_x():\n    pass\n")
    (hidden / "conftest.py").write_text("# hidden-canary-7f3a\n")
    (public / "test_public_api.py").write_text(
        "import pytest\n\nimport resnet\nimport modern\n\n\n"
        "def test_stub_raises():\n"
        "    with pytest.raises(NotImplementedError):\n"
        "        resnet.ResidualBlock(64, 64)\n\n\n"
        "def test_modern_imports_resnet():\n"
        "    assert modern.ResidualBlock is resnet.ResidualBlock\n"
    )
    (public / "helper_not_a_test.py").write_text("# hidden-canary-7f3a is not here either\n")
    return spec.model_copy(update={"hidden_tests": hidden, "public_tests": public})


def test_public_tests_are_released_and_run_with_pytest(demo_spec, tmp_path):
    zip_path = build_release(demo_spec, tmp_path / "out")
    folder = zip_path.parent / demo_spec.id
    names = {p.name for p in folder.iterdir()}
    assert "test_public_api.py" in names
    assert not {"test_hidden_secret.py", "helper_not_a_test.py"} & names
    with zipfile.ZipFile(zip_path) as zf:
        assert all(b"hidden-canary-7f3a" not in zf.read(n) for n in zf.namelist())
    readme = (folder / "README.md").read_text()
    assert "test_public_api.py" in readme

    # unzip elsewhere and run pytest there, as a student would
    student = tmp_path / "student"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(student)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], cwd=student / demo_spec.id,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout


def test_release_is_reproducible_and_replaces_an_old_one(spec, tmp_path):
    first = build_release(spec, tmp_path).read_bytes()
    (tmp_path / spec.id / "leftover.txt").write_text("old")
    second = build_release(spec, tmp_path)
    assert second.read_bytes() == first
    assert not (tmp_path / spec.id / "leftover.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_stale_skeleton_is_refused(spec, tmp_path):
    skeleton = tmp_path / "skeleton"
    shutil.copytree(spec.skeleton, skeleton, ignore=shutil.ignore_patterns("__pycache__"))
    (skeleton / "vgg.py").write_text((skeleton / "vgg.py").read_text() + "\nLEAK = 1\n")
    stale = spec.model_copy(update={"skeleton": skeleton})
    with pytest.raises(ReleaseError, match="out of date"):
        build_release(stale, tmp_path / "out")
    assert not (tmp_path / "out" / spec.id).exists()


def test_cli(tmp_path, capsys):
    from grader.cli import main

    assert main(["release", "--out", str(tmp_path / "rel")]) == 0
    assert "day09.zip" in capsys.readouterr().out
    assert zipfile.ZipFile(io.BytesIO((tmp_path / "rel" / "day09.zip").read_bytes())).testzip() is None
    with pytest.raises(SystemExit):
        main(["release"])  # --out is required
    (tmp_path / "file").write_text("x")
    assert main(["release", "--out", str(tmp_path / "file")]) == 2
    assert main(["release", "--assignment", "nope", "--out", str(tmp_path / "x")]) == 2
