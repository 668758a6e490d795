"""The student skeleton: generated from the reference, up to date, same API, every stub raises.

The skeleton's modules have the same names as the reference's (``resnet``,
``vgg``, ...) and import each other by those names, so they are imported in a
separate Python process.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.authoring.skeleton import SkeletonError, check, generate, make_stub

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "day09"
SKELETON = ROOT / "assignments" / "day09"
MODULES = ("vgg", "resnet", "inception", "mobilenet", "modern", "training", "visualize", "scaling")

# Constructor arguments from the lesson for classes without defaults for every parameter.
LESSON_ARGS = {
    "VGGBlock": [3, 64, 2],
    "ResidualBlock": [64, 128, 2],
    "NoSkipBlock": [16],
    "WithSkipBlock": [16],
    "InceptionModule": [64, 32, 48, 64, 8, 16, 16],
    "DepthwiseSeparableConv": [32, 64],
    "ResNet": [[2, 2, 2, 2]],
}


# ----------------------------------------------------------------------------- up to date

def test_committed_skeleton_is_up_to_date():
    assert check(REFERENCE, SKELETON) == []


def test_regeneration_changes_nothing(tmp_path):
    copy = tmp_path / "skeleton"
    shutil.copytree(SKELETON, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    paths = generate(REFERENCE, copy)
    assert sorted(p.name for p in paths) == sorted(f"{m}.py" for m in MODULES)
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


def test_generate_from_scratch_matches_and_check_reports_drift(tmp_path):
    out = tmp_path / "fresh"
    generate(REFERENCE, out)
    for name in (f"{m}.py" for m in MODULES):
        assert (out / name).read_bytes() == (SKELETON / name).read_bytes()
    (out / "vgg.py").write_text((out / "vgg.py").read_text() + "\n# edited by hand\n")
    (out / "resnet.py").unlink()
    (out / "extra.py").write_text("x = 1\n")
    problems = check(REFERENCE, out)
    assert len(problems) == 3
    assert any(p.startswith("vgg.py: out of date") for p in problems)
    assert any(p.startswith("resnet.py: missing") for p in problems)
    assert any(p.startswith("extra.py:") for p in problems)
    generate(REFERENCE, out)
    assert check(REFERENCE, out) == []


def test_cli_check():
    from grader.cli import main

    assert main(["skeleton", "--check"]) == 0


# ----------------------------------------------------------------------------- same API (by AST)

def api(path: Path) -> dict[str, tuple]:
    """Classes, methods and functions of a module (not nested in function bodies) and its top-level names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, tuple] = {}

    def visit(body, prefix):
        for node in body:
            if isinstance(node, ast.ClassDef):
                found[prefix + node.name] = ("class", tuple(ast.dump(b) for b in node.bases),
                                             tuple(ast.dump(d) for d in node.decorator_list))
                visit(node.body, prefix + node.name + ".")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[prefix + node.name] = (
                    type(node).__name__, ast.dump(node.args), ast.dump(node.returns) if node.returns else None,
                    tuple(ast.dump(d) for d in node.decorator_list), ast.get_docstring(node),
                )
            elif not prefix and isinstance(node, (ast.Import, ast.ImportFrom)):
                found[f"import:{ast.dump(node)}"] = ("import",)
            elif not prefix and isinstance(node, (ast.Assign, ast.AnnAssign)):
                found[f"assign:{ast.dump(node)}"] = ("assign",)
    visit(tree.body, "")
    found["<module docstring>"] = (ast.get_docstring(tree),)
    return found


@pytest.mark.parametrize("module", MODULES)
def test_skeleton_mirrors_reference_api(module):
    ref, skel = api(REFERENCE / f"{module}.py"), api(SKELETON / f"{module}.py")
    assert sorted(skel) == sorted(ref)
    for name in ref:
        assert skel[name] == ref[name], f"{module}.{name} differs between reference and skeleton"


def stubbed(path: Path) -> set[str]:
    """Qualified names of the functions whose body raises NotImplementedError directly."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()

    def visit(body, prefix):
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, prefix + node.name + ".")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Raise) and isinstance(stmt.exc, ast.Call)
                            and getattr(stmt.exc.func, "id", None) == "NotImplementedError"):
                        names.add(prefix + node.name)
    visit(tree.body, "")
    return names


def test_every_target_is_stubbed():
    from grader.spec import find_spec

    spec = find_spec("day09")
    for target in spec.targets:
        names = stubbed(SKELETON / target.file)
        if target.kind == "class":
            assert f"{target.name}.__init__" in names and f"{target.name}.forward" in names, target.name
        else:
            assert target.name in names, target.name
    assert "make_synthetic_dataset" not in stubbed(SKELETON / "training.py")


# ----------------------------------------------------------------------------- import and call (subprocess)

PROBE = r'''
import importlib, inspect, json, sys
sys.path.insert(0, sys.argv[1])
lesson_args = json.loads(sys.argv[2])
modules = json.loads(sys.argv[3])
report = {"signatures": {}, "calls": {}}

def outcome(fn, *args):
    try:
        fn(*args)
    except NotImplementedError as e:
        return ["NotImplementedError", str(e)]
    except BaseException as e:
        return [type(e).__name__, str(e)[:200]]
    return ["returned", ""]

def dummy(fn, skip):
    params = list(inspect.signature(fn).parameters.values())[skip:]
    return [None for p in params if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

for name in modules:
    module = importlib.import_module(name)
    for attr, obj in vars(module).items():
        if getattr(obj, "__module__", None) != name or attr.startswith("__"):
            continue
        key = f"{name}.{attr}"
        if inspect.isclass(obj):
            report["signatures"][key] = str(inspect.signature(obj))
            report["calls"][f"{key}.__init__"] = outcome(obj, *lesson_args.get(attr, []))
            for meth_name, raw in vars(obj).items():
                if meth_name == "__init__" or not (inspect.isfunction(raw) or isinstance(raw, staticmethod)):
                    continue
                fn = getattr(obj, meth_name)
                report["signatures"][f"{key}.{meth_name}"] = str(inspect.signature(fn))
                if isinstance(raw, staticmethod):
                    report["calls"][f"{key}.{meth_name}"] = outcome(fn, *dummy(fn, 0))
                else:
                    report["calls"][f"{key}.{meth_name}"] = outcome(fn, obj.__new__(obj), *dummy(fn, 1))
        elif inspect.isfunction(obj):
            report["signatures"][key] = str(inspect.signature(obj))
            report["calls"][key] = outcome(obj, *dummy(obj, 0))
print("REPORT" + json.dumps(report))
'''


@pytest.fixture(scope="module")
def skeleton_report() -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(SKELETON), json.dumps(LESSON_ARGS), json.dumps(MODULES)],
        capture_output=True, text=True, timeout=120, cwd=SKELETON.parent,
    )
    assert proc.returncode == 0, f"importing the skeleton failed:\n{proc.stderr[-3000:]}"
    line = next(l for l in proc.stdout.splitlines() if l.startswith("REPORT"))
    return json.loads(line[len("REPORT"):])


def load_folder(folder: Path, names=MODULES) -> SimpleNamespace:
    """Import the flat modules ``names`` from ``folder`` without leaving them in ``sys.modules``."""
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        return SimpleNamespace(**{n: importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(folder))
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def reference_signatures() -> dict[str, str]:
    ref = load_folder(REFERENCE)
    found = {}
    for name in MODULES:
        module = getattr(ref, name)
        for attr, obj in vars(module).items():
            if getattr(obj, "__module__", None) != name or attr.startswith("__"):
                continue
            if inspect.isclass(obj):
                found[f"{name}.{attr}"] = str(inspect.signature(obj))
                for meth_name, raw in vars(obj).items():
                    if meth_name != "__init__" and (inspect.isfunction(raw) or isinstance(raw, staticmethod)):
                        found[f"{name}.{attr}.{meth_name}"] = str(inspect.signature(getattr(obj, meth_name)))
            elif inspect.isfunction(obj):
                found[f"{name}.{attr}"] = str(inspect.signature(obj))
    return found


def test_skeleton_imports_and_signatures_match_reference(skeleton_report):
    assert skeleton_report["signatures"] == reference_signatures()


def test_every_stub_raises_not_implemented(skeleton_report):
    expected = set()
    for module in MODULES:
        expected |= {f"{module}.{q}" for q in stubbed(SKELETON / f"{module}.py")}
    assert expected, "the skeleton has no stubs"
    calls = skeleton_report["calls"]
    for name in sorted(expected):
        assert name in calls, f"{name} was not called"
        kind, message = calls[name]
        assert kind == "NotImplementedError", f"{name} raised {kind}: {message}"
        assert message.startswith("TODO"), f"{name}: {message!r}"
    # everything that is not a stub is provided and works
    assert calls["training.make_synthetic_dataset"][0] == "returned"


# ----------------------------------------------------------------------------- make_stub

SOURCE = '''\
"""Module docstring."""

import torch
from torch import nn


class Block(nn.Module):
    """A block."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        # TODO: build two convolutions
        self.conv = nn.Conv2d(channels, channels, 3)
        # END SOLUTION

    def forward(self, x):
        """(N, C, H, W) -> (N, C, H - 2, W - 2)."""
        # BEGIN SOLUTION
        return self.conv(x)
        # END SOLUTION


def helper(a, b=2):
    return a + b
'''


def test_make_stub_replaces_regions_and_keeps_the_rest():
    stub = make_stub(SOURCE)
    assert "self.conv = nn.Conv2d" not in stub and "return self.conv(x)" not in stub
    assert "SOLUTION" not in stub
    assert '        super().__init__()\n        raise NotImplementedError("TODO: build two convolutions")\n' in stub
    assert '"""(N, C, H, W) -> (N, C, H - 2, W - 2)."""\n        raise NotImplementedError("TODO: implement Block.forward")\n' in stub
    assert "def helper(a, b=2):\n    return a + b\n" in stub
    assert stub.startswith('"""Module docstring."""\n\nimport torch\nfrom torch import nn\n')
    compile(stub, "<stub>", "exec")


def test_make_stub_without_markers_is_identity():
    assert make_stub("def f():\n    return 1\n") == "def f():\n    return 1\n"


def test_make_stub_keeps_super_init_inside_a_region():
    source = textwrap.dedent('''\
        class A(Base):
            def __init__(self):
                # BEGIN SOLUTION
                super(A, self).__init__()
                self.x = 1
                # END SOLUTION
        ''')
    stub = make_stub(source)
    assert "super(A, self).__init__()\n        raise NotImplementedError(" in stub
    assert "self.x" not in stub


def test_make_stub_escapes_hint_and_keeps_crlf():
    source = 'def f():\r\n    # BEGIN SOLUTION\r\n    # TODO: use "quotes" and a \\ backslash\r\n    return 1\r\n    # END SOLUTION\r\n'
    stub = make_stub(source)
    assert stub == 'def f():\r\n    raise NotImplementedError("TODO: use \\"quotes\\" and a \\\\ backslash")\r\n'
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match=r'TODO: use "quotes" and a \\ backslash'):
        namespace["f"]()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", r"<reference>:2: BEGIN SOLUTION has no matching END SOLUTION"),
        ("def f():\n    return 1\n    # END SOLUTION\n", r":3: END SOLUTION without a BEGIN SOLUTION"),
        ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n",
         r":3: BEGIN SOLUTION inside the region opened at line 2"),
        ("def f():\n    # BEGIN SOLUTIONS\n    return 1\n    # END SOLUTION\n", r":2: malformed solution marker"),
        ("def f():\n    #begin solution\n    return 1\n", r":2: malformed solution marker"),
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", r"not inside a function body"),
        ("class A:\n    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION\n", r"not inside a function body"),
        ("def f():\n    # BEGIN SOLUTION\n    # END SOLUTION\n    return 1\n", r"holds no code"),
        ("def f():\n    x = [\n        # BEGIN SOLUTION\n        1,\n        # END SOLUTION\n    ]\n", r"splits the statement"),
        ("def f():\n    if True:\n        # BEGIN SOLUTION\n        x = 1\n    return 2\n    # END SOLUTION\n",
         r"indented differently"),
        ("def f(:\n    pass\n", r"not valid Python"),
    ],
    ids=["begin-without-end", "end-without-begin", "nested", "misspelt", "lowercase", "module-level",
         "class-body", "empty", "inside-expression", "mismatched-indent", "syntax-error"],
)
def test_make_stub_rejects_malformed_markers(source, message):
    with pytest.raises(SkeletonError, match=message):
        make_stub(source)


def test_generate_writes_nothing_when_a_file_is_malformed(tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    ref.mkdir()
    (ref / "good.py").write_text("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n")
    (ref / "bad.py").write_text("def g():\n    # BEGIN SOLUTION\n    return 2\n")
    with pytest.raises(SkeletonError, match="bad.py:2"):
        generate(ref, out)
    assert not out.exists() or not any(out.iterdir())


def test_cli_reports_a_malformed_reference_as_usage_error(tmp_path, monkeypatch, capsys):
    from grader.cli import main

    courses = tmp_path / "courses" / "demo"
    for sub in ("hidden", "public", "ref", "skel"):
        (courses / sub).mkdir(parents=True)
    (courses / "ref" / "a.py").write_text("def f():\n    # BEGIN SOLUTION\n    return 1\n")
    (courses / "assignment.toml").write_text(textwrap.dedent('''\
        id = "demo"
        title = "Demo"
        reference = "ref"
        skeleton = "skel"
        hidden_tests = "hidden"
        public_tests = "public"
        files = ["a.py"]
        targets = [{ name = "f", file = "a.py", kind = "function" }]
        [[rubric]]
        target = "f"
        category = "api"
        points = 100
        '''))
    monkeypatch.setenv("GRADER_COURSES", str(tmp_path / "courses"))
    assert main(["skeleton"]) == 2
    assert "a.py:2: BEGIN SOLUTION has no matching END SOLUTION" in capsys.readouterr().err
    assert main(["skeleton", "--check"]) == 2
    (courses / "ref" / "a.py").write_text("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n")
    assert main(["skeleton", "--check"]) == 1
    assert "a.py: missing" in capsys.readouterr().out
    assert main(["skeleton"]) == 0
    assert main(["skeleton", "--check"]) == 0
    assert (courses / "skel" / "a.py").read_text() == 'def f():\n    raise NotImplementedError("TODO: implement f")\n'
