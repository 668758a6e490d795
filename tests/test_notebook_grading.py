"""Notebook submissions graded end to end: from the notebook's cells, and none of the rest ever runs."""

from __future__ import annotations

import json

import pytest
from notebooks import PIP_CELL, PLOT_CELL, notebook_bytes, reference_cells, training_cell

from grader.results import Outcome


def notebook_folder(tmp_path, cells, name="student", extra=None):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "homework.ipynb").write_bytes(notebook_bytes(cells))
    for rel, text in (extra or {}).items():
        (folder / rel).write_text(text, encoding="utf-8")
    return folder


def test_a_notebook_only_submission_gets_full_marks_and_its_training_cell_never_runs(minisession, minispec, tmp_path):
    marker = tmp_path / "the-training-cell-ran"
    cells = reference_cells(minispec.reference, minispec.files) + [PIP_CELL, training_cell(marker), PLOT_CELL]
    result = minisession.grade(notebook_folder(tmp_path, cells))
    # Had the training cell run anywhere, it would have left the marker (here), hung past the import
    # limit or raised on import (there): every test passes instead.
    assert not marker.exists()
    assert result.score == result.max_score == 10
    assert all(t.outcome is Outcome.passed for t in result.tests)
    assert result.problems == [] and result.flags == []
    assert result.notebook.written == {"blocks.py": ["SkipBlock", "double"]}
    left = {c.cell: c for c in result.notebook.cells if c.status == "left out"}
    assert sorted(left) == [len(cells) - 2, len(cells) - 1, len(cells)]


def test_a_py_file_in_the_folder_counts_over_the_notebook(minisession, minispec, tmp_path):
    own = (minispec.reference / "blocks.py").read_text().replace("return 2 * x", "return 3 * x")
    cells = reference_cells(minispec.reference, minispec.files)
    result = minisession.grade(notebook_folder(tmp_path, cells, extra={"blocks.py": own}))
    failed = {t.target for t in result.tests if t.outcome is not Outcome.passed}
    assert failed == {"double"}                      # the folder's own (wrong) double was graded
    assert result.notebook.kept == ["blocks.py"] and result.notebook.written == {}
    assert any(n.startswith("Your blocks.py counts") for n in result.notebook.notes)


def test_a_broken_notebook_is_one_problem_not_a_crash(minisession, tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "homework.ipynb").write_text("{\"cells\": [", encoding="utf-8")
    result = minisession.grade(folder)
    assert result.score == 0
    kinds = [(p.kind, p.file) for p in result.problems]
    assert kinds == [("bad_input", "homework.ipynb"), ("missing", "blocks.py")]


@pytest.mark.slow
def test_the_day09_reference_as_a_notebook_gets_full_marks(tmp_path):
    """The reference's eight files pasted into one notebook, plus the cells students keep around them."""
    from grader import cli
    from grader.spec import find_spec

    spec = find_spec("day09")
    marker = tmp_path / "the-training-cell-ran"
    cells = reference_cells(spec.reference, spec.files) + [PIP_CELL, training_cell(marker), PLOT_CELL]
    folder = notebook_folder(tmp_path, cells, name="nbstudent")
    out = tmp_path / "out"
    assert cli.main(["run", str(folder), "--out", str(out), "--assignment", "day09"]) == 0
    graded = json.loads((out / "nbstudent" / "grading.json").read_text())
    assert not marker.exists()
    assert graded["problems"] == []     # every file imported: the training cell did not run there either
    # A per-test time limit can run out on a loaded machine, as it would for the reference (the tests of that
    # class then error, "charged once"); nothing else may go wrong.
    assert all(f["kind"] == "timeout" and f["test"] for f in graded["flags"]), graded["flags"]
    timed_out = [t for t in graded["tests"] if t["outcome"] == "error" and "did not finish within" in t["message"]]
    assert len(timed_out) <= 4
    ran = [t for t in graded["tests"] if t["outcome"] != "skipped" and t not in timed_out]
    assert len(ran) > 100 and all(t["outcome"] == "passed" for t in ran), \
        [t["name"] for t in ran if t["outcome"] != "passed"]
    if not timed_out:
        assert graded["score"] >= graded["max_score"] > 0   # the bonus is extra; GPU checks skipped here carry none
    assert set(graded["notebook"]["written"]) == set(spec.files)
    page = (out / "nbstudent" / "report.html").read_text()
    assert 'id="notebook"' in page and "a loop at the top level (such as a training loop) never runs" in page


def test_a_folder_with_the_untouched_skeleton_and_a_notebook_is_graded_from_the_notebook(minisession, minispec,
                                                                                        tmp_path):
    """The usual case: a student works in a notebook inside the folder they were handed."""
    skeleton = (minispec.skeleton / "blocks.py").read_text()
    cells = reference_cells(minispec.reference, minispec.files)
    result = minisession.grade(notebook_folder(tmp_path, cells, extra={"blocks.py": skeleton}))
    assert result.score == result.max_score == 10
    assert result.notebook.written == {"blocks.py": ["SkipBlock", "double"]} and result.notebook.kept == []
