"""Notebook submissions: each conversion step alone, then the whole intake of a folder."""

from __future__ import annotations

import ast
import json

import pytest
from notebooks import PIP_CELL, PLOT_CELL, notebook_bytes, reference_cells, training_cell

from grader.intake.submission import read_submission
from grader.intake.notebook.cells import NotebookUnreadable, code_cells
from grader.intake.notebook.magics import strip_magics
from grader.intake.notebook.statements import CODE, CONSTANT, DEFINITION, IMPORT, STAR_IMPORT, classify, used_names
from grader.intake.notebook.take import NotebookRules, rules_for, take_notebooks
from grader.spec import SpecError, find_spec, load_spec

RULES = NotebookRules(place={"Block": "blocks.py", "Net": "net.py", "double": "blocks.py"})
EXPECTED = ["blocks.py", "net.py"]

BLOCK = """import torch
from torch import nn
import matplotlib.pyplot as plt

WIDTH = 8

def helper(x):
    return x * 2

class Block(nn.Module):
    def __init__(self, channels=WIDTH):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return helper(self.conv(x)) + x
"""
NET = """class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block(WIDTH)

    def forward(self, x):
        return helper(self.block(x))
"""


def statement(code: str) -> ast.stmt:
    return ast.parse(code).body[0]


def taken(cells: list[str], files: dict[str, bytes] | None = None, rules: NotebookRules = RULES):
    return take_notebooks({"work.ipynb": notebook_bytes(cells), **(files or {})}, EXPECTED, rules)


def names_defined(text: bytes | str) -> set[str]:
    tree = ast.parse(text)
    out = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            out |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return out


# --- step 1: reading the notebook ---------------------------------------------------------------

def test_code_cells_are_read_in_order_and_markdown_counts_in_the_numbering():
    data = notebook_bytes(["x = 1", "def f():\n    return 2"], markdown={1: "# Part 2"})
    cells = code_cells(data)
    assert [(c.index, c.source) for c in cells] == [(1, "x = 1"), (3, "def f():\n    return 2")]


@pytest.mark.parametrize("data, says", [
    (b"", "empty"),
    (b"print('hello')\n", "not JSON"),
    (json.dumps({"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode(), "notebook format"),
    (b"\xff\xfe\x00garbage", "UTF-8"),
    (json.dumps([1, 2, 3]).encode(), "not a notebook"),
])
def test_what_is_not_a_notebook_is_refused_with_a_reason(data, says):
    with pytest.raises(NotebookUnreadable, match=says):
        code_cells(data)


# --- step 2: IPython syntax ---------------------------------------------------------------------

def test_shell_and_magic_lines_become_pass_and_are_remembered():
    s = strip_magics("!pip install torch\nimport torch\n%matplotlib inline\ndef f():\n    !ls\n    return 1\n")
    assert s.magic_lines == {1: "!pip install torch", 3: "%matplotlib inline", 5: "!ls"}
    tree = ast.parse(s.source)   # it is Python now, with the same line numbers
    assert [type(n).__name__ for n in tree.body] == ["Pass", "Import", "Pass", "FunctionDef"]
    assert tree.body[3].lineno == 4


def test_a_cell_magic_makes_the_whole_cell_not_python():
    s = strip_magics("%%time\nfor i in range(3):\n    train()\n")
    assert s.cell_magic == "%%time" and s.source == ""


# --- step 3: sorting statements -----------------------------------------------------------------

@pytest.mark.parametrize("code, kind", [
    ("import torch.nn as nn", IMPORT),
    ("from torch import nn, Tensor", IMPORT),
    ("from torch.nn import *", STAR_IMPORT),
    ("class A(nn.Module):\n    pass", DEFINITION),
    ("@torch.no_grad()\ndef f():\n    pass", DEFINITION),
    ("CFG = [64, 'M', 128, 'M']", CONSTANT),
    ("ALPHA, BETA = 1.2, 1.1", CONSTANT),
    ("SIZES: tuple = (2 ** 5, WIDTH * 2)", CONSTANT),
    ("act = lambda x: x.relu()", CONSTANT),
    ("model = ResNet()", CODE),
    ("device = torch.device('cpu')", CODE),
    ("cfg['lr'] = 0.1", CODE),
    ("for epoch in range(3):\n    train()", CODE),
    ("while True:\n    pass", CODE),
    ("plt.plot([1, 2])", CODE),
    ("if __name__ == '__main__':\n    main()", CODE),
    ("try:\n    import x\nexcept ImportError:\n    pass", CODE),
    ("x += 1", CODE),
])
def test_top_level_statements_are_sorted_by_what_they_do(code, kind):
    assert classify(statement(code))[0] == kind


def test_only_global_names_count_as_used():
    code = "def train(model, loader):\n    for x, y in loader:\n        loss = F.cross_entropy(model(x), y)\n    return LR"
    assert used_names(code, statement(code)) == {"F", "LR"}


def test_names_bound_by_code_that_never_runs_are_known_for_warnings():
    kind, binds, reason = classify(statement("device = torch.device('cuda')"))
    assert kind == CODE and binds == {"device"} and "never runs" in reason


# --- step 4 and 5: placing statements into files, and the report -----------------------------------

def test_targets_go_to_their_files_with_what_they_use_and_nothing_else():
    t = taken([BLOCK, NET, "net = Net()\nfor i in range(3):\n    print(net(i))", PLOT_CELL])
    assert set(t.files) == {"blocks.py", "net.py"}
    blocks, net = t.files["blocks.py"].decode(), t.files["net.py"].decode()
    assert names_defined(blocks) == {"nn", "WIDTH", "helper", "Block"}   # torch and plt are not used
    # Net's own file imports the target it uses from the file that owns it, and copies the helper and the constant
    assert "from blocks import Block" in net
    assert names_defined(net) == {"Block", "nn", "WIDTH", "helper", "Net"}
    for text in (blocks, net):
        assert "plt" not in text and "range(3)" not in text and "Net()" not in text
        compile(text, "x.py", "exec")
    assert t.report.written == {"blocks.py": ["Block"], "net.py": ["Net"]}
    assert t.problems == []


def test_the_report_lists_taken_and_left_out_cells_with_reasons():
    t = taken([BLOCK, NET, PIP_CELL, "net = Net()\nfor i in range(3):\n    print(net(i))", PLOT_CELL])
    cells = {c.cell: c for c in t.report.cells}
    assert [x.name for x in cells[1].taken] == ["from torch import nn", "WIDTH", "helper", "Block"]
    assert {x.name: x.files for x in cells[1].taken}["helper"] == ["blocks.py", "net.py"]
    assert [(x.lines, x.reason) for x in cells[1].left_out] == [("1", "not used by the graded code"),
                                                                 ("3", "not used by the graded code")]
    assert cells[2].status == "taken"
    assert cells[3].status == "left out"
    assert [x.code for x in cells[3].left_out] == ["!pip install torch torchvision", "%matplotlib inline"]
    assert all("shell command or IPython magic" in x.reason for x in cells[3].left_out)
    assert [(x.lines, x.reason.split(" never")[0]) for x in cells[4].left_out] == [
        ("1", "an assignment computed by a call (it would run code)"),
        ("2-3", "a loop at the top level (such as a training loop)")]
    assert cells[5].status == "left out" and "never runs" in cells[5].left_out[-1].reason


def test_a_name_defined_twice_keeps_the_last_definition():
    first = "def double(x):\n    return x + 1"
    t = taken([first, BLOCK, "def double(x):\n    return 2 * x"])
    assert "return 2 * x" in t.files["blocks.py"].decode() and "x + 1" not in t.files["blocks.py"].decode()
    assert t.report.cells[0].left_out[0].reason == "defined again later (cell 3); the last one counts"


def test_a_py_file_in_the_folder_counts_over_the_notebook():
    own = b"import torch\nclass Block(torch.nn.Module):\n    pass\n"
    t = taken([BLOCK, NET], files={"blocks.py": own})
    assert set(t.files) == {"net.py"}          # blocks.py is the student's own, untouched
    assert "from blocks import Block" in t.files["net.py"].decode()
    assert t.report.kept == ["blocks.py"]
    assert any("Your blocks.py counts" in n for n in t.report.notes)
    block_cell = t.report.cells[0]
    assert any(x.code.startswith("class Block") and x.reason == "your blocks.py counts, so this definition is not used"
               for x in block_cell.left_out)


def test_code_that_uses_a_name_set_by_code_that_never_runs_is_warned_about():
    t = taken(["import torch\ndevice = torch.device('cpu')",
               "def double(x):\n    return torch.tensor(x, device=device) * 2"])
    warning = t.report.cells[0].left_out[0].reason
    assert "your graded code uses device, which this sets" in warning


def test_several_notebooks_are_read_in_name_order_as_one():
    files = {"b.ipynb": notebook_bytes(["def double(x):\n    return 2 * x"]),
             "a.ipynb": notebook_bytes(["def double(x):\n    return 0", BLOCK])}
    t = take_notebooks(files, EXPECTED, RULES)
    assert t.report.notebooks == ["a.ipynb", "b.ipynb"]
    assert "return 2 * x" in t.files["blocks.py"].decode()
    assert "2 notebooks were read in name order" in t.report.notes[0]
    assert "b.ipynb, cell 1" in t.report.cells[0].left_out[0].reason


def test_an_unreadable_notebook_is_one_problem_and_the_others_are_still_read():
    files = {"a.ipynb": b"{not json", "b.ipynb": notebook_bytes([BLOCK])}
    t = take_notebooks(files, EXPECTED, RULES)
    assert [(p.file, p.kind) for p in t.problems] == [("a.ipynb", "bad_input")]
    assert "a.ipynb could not be read as a notebook: it is not JSON" in t.problems[0].message
    assert set(t.files) == {"blocks.py"} and t.report.notebooks == ["b.ipynb"]


def test_a_spec_that_refuses_notebooks_says_the_notebook_was_found():
    t = taken([BLOCK], rules=NotebookRules(accept=False, place=RULES.place))
    assert t.files == {} and "work.ipynb was found, but this assignment is graded from .py files only" in \
        t.problems[0].message


def test_from_future_imports_go_first_and_star_imports_everywhere():
    t = taken(["from __future__ import annotations\nfrom torch.nn import *", BLOCK, NET])
    for text in t.files.values():
        lines = [ln for ln in text.decode().splitlines() if ln and not ln.startswith("#")]
        assert lines[0] == "from __future__ import annotations"
        assert "from torch.nn import *" in lines
        compile(text, "x.py", "exec")


# --- the intake of a folder ----------------------------------------------------------------------------

def test_a_notebook_only_folder_supplies_the_missing_files(tmp_path):
    (tmp_path / "day.ipynb").write_bytes(notebook_bytes([BLOCK]))
    intake = read_submission(tmp_path, EXPECTED, RULES)
    assert "blocks.py" in intake.files and intake.notebook.written == {"blocks.py": ["Block"]}
    missing = [p for p in intake.problems if p.kind == "missing"]
    assert [p.message for p in missing] == ["net.py is missing and the notebook defines none of Net; its tests score 0"]


def test_without_notebook_rules_the_intake_is_unchanged(tmp_path):
    (tmp_path / "day.ipynb").write_bytes(notebook_bytes([BLOCK]))
    intake = read_submission(tmp_path, EXPECTED)
    assert set(intake.files) == {"day.ipynb"} and intake.notebook is None


def test_a_notebook_over_the_size_limit_is_named_with_what_to_do(tmp_path, monkeypatch):
    from grader.intake import submission as intake_module

    monkeypatch.setattr(intake_module, "MAX_FILE_BYTES", 1000)
    (tmp_path / "day.ipynb").write_bytes(notebook_bytes([BLOCK, "x = '" + "a" * 2000 + "'"]))
    result = read_submission(tmp_path, EXPECTED, RULES)
    assert result.notebook is None
    assert "day.ipynb (over the size or file-count limit; clear its outputs" in result.problems[0].detail


def test_the_reference_split_into_cells_gives_every_file_with_every_target(tmp_path):
    spec = find_spec("day09")
    cells = reference_cells(spec.reference, spec.files) + [PIP_CELL, training_cell(tmp_path / "ran"), PLOT_CELL]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "day09.ipynb").write_bytes(notebook_bytes(cells))
    intake = read_submission(tmp_path / "sub", spec.files, rules_for(spec))
    assert [p for p in intake.problems] == []
    for f in spec.files:
        text = intake.files[f].decode()
        compile(text, f, "exec")
        assert {t.name for t in spec.targets if t.file == f} <= names_defined(text)
        assert "while True" not in text and "plt." not in text and "pip install" not in text
    assert "from resnet import ResidualBlock" in intake.files["modern.py"].decode()
    assert {"ALPHA", "BETA", "GAMMA", "BASE_WIDTHS", "BASE_BLOCKS"} <= names_defined(intake.files["scaling.py"])
    pip, training, plot = intake.notebook.cells[-3:]
    assert [pip.status, training.status, plot.status] == ["left out", "partly taken", "left out"]
    assert [t.name for t in training.taken] == ["from pathlib import Path"]   # the same import made earlier
    assert len(training.left_out) == 4 and not (tmp_path / "ran").exists()


# --- the spec's [notebook] table ------------------------------------------------------------------------

def _spec_with(minicourse_copy, table: str):
    path = minicourse_copy / "assignment.toml"
    path.write_text(path.read_text() + "\n" + table + "\n")
    return load_spec(minicourse_copy)


def test_the_spec_places_extra_names_and_can_refuse_notebooks(minicourse_copy):
    spec = _spec_with(minicourse_copy, '[notebook]\naccept = false\nplace = { make_data = "blocks.py" }')
    rules = rules_for(spec)
    assert rules.accept is False and rules.place["make_data"] == "blocks.py" and rules.place["double"] == "blocks.py"


@pytest.mark.parametrize("table, says", [
    ('[notebook]\nplace = { make_data = "other.py" }', "notebook.place: make_data goes to other.py, which is not in files"),
    ('[notebook]\nplace = { "not a name" = "blocks.py" }', "field notebook.place: .*'not a name' is not a Python name"),
    ('[notebook]\nplace = { helper = "blocks.txt" }', "field notebook.place: .*not a .py file"),
    ('[notebook]\naccept = "yes please"', "field notebook.accept"),
    ('[notebook]\nplaces = {}', "field notebook.places"),
])
def test_a_bad_notebook_table_names_its_field(minicourse_copy, table, says):
    with pytest.raises(SpecError, match=says):
        _spec_with(minicourse_copy, table)


# --- the student report's section ------------------------------------------------------------------------

def test_the_student_report_lists_taken_and_left_out_cells():
    import html

    from resultfactory import make_result

    from grader.report import render_student

    t = taken([BLOCK, NET, PIP_CELL, "net = Net()\nfor i in range(3):\n    print('<script>alert(1)</script>')"])
    result = make_result()
    assert 'id="notebook"' not in render_student(result)
    result.notebook = t.report
    page = render_student(result)
    section = page[page.index('id="notebook"'):]
    section = section[:section.index("</section>")]
    assert "<code>work.ipynb</code>" in section and "never ran" in section
    assert "1 cell taken, 1 partly taken, 2 left out." in section
    assert "Cell 3" in section and html.escape("!pip install torch torchvision") in section
    assert "a loop at the top level (such as a training loop) never runs" in section
    assert "Cells taken whole (1)" in section and "<code>Net</code> → net.py" in section
    assert "blocks.py was written from the notebook: Block." in section
    assert "<script>" not in page and "Lines 2-3" in section
    summary = result.to_gradescope()["output"]
    assert "Graded from your notebook work.ipynb: blocks.py, net.py written from its cells; 3 cell(s) with code " \
           "left out (never run), listed in your report." in summary


def test_a_cell_of_many_statements_is_reported_in_bounded_space():
    cell = "\n".join(f"print({i})\nx{i} = f({i})" for i in range(300))
    report = taken([BLOCK, cell]).report.cells[1]
    assert len(report.left_out) == 41 and report.left_out[-1].reason == "560 more statements left out"


def test_a_py_file_left_as_the_skeleton_handed_it_out_does_not_count():
    skeleton = b"class Block:\n    def __init__(self):\n        raise NotImplementedError\n"
    rules = NotebookRules(place=RULES.place, skeleton={"blocks.py": skeleton})
    t = taken([BLOCK], files={"blocks.py": skeleton.replace(b"\n", b"\r\n") + b"\n"}, rules=rules)
    assert "class Block(nn.Module)" in t.files["blocks.py"].decode()
    assert t.report.kept == []
    assert "blocks.py was written from the notebook (your folder's copy is the unchanged skeleton): Block." \
        in t.report.notes
    edited = taken([BLOCK], files={"blocks.py": skeleton + b"# started\n"}, rules=rules)
    assert edited.files == {} and edited.report.kept == ["blocks.py"]


def test_the_day09_rules_know_the_skeleton_of_every_file():
    spec = find_spec("day09")
    rules = rules_for(spec)
    assert set(rules.skeleton) == set(spec.files)
    assert rules.place["ResidualBlock"] == "resnet.py" and rules.place["make_synthetic_dataset"] == "training.py"
