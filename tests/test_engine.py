"""The grading core on the one-file mini course: points, messages, suite checks."""

from __future__ import annotations

import textwrap

import pytest

from grader.grading.plugin import SuiteError
from grader.results import Outcome

CORRECT = textwrap.dedent('''
    import torch.nn as nn, torch.nn.functional as F
    class SkipBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.body = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        def forward(self, x):
            return x + F.relu(self.body(x))
    def double(x):
        return x * 2
''')


def by_name(result):
    return {t.nodeid.split("::")[-1]: t for t in result.tests}


def test_reference_scores_full_marks(minisession, minispec):
    result = minisession.grade(minispec.reference, "ref")
    assert result.score == result.max_score == minispec.total_points
    assert all(t.outcome is Outcome.passed for t in result.tests)
    assert "bubblewrap" in result.isolation or "process only" in result.isolation


def test_other_style_scores_full_marks(minisession, make_submission):
    result = minisession.grade(make_submission({"blocks.py": CORRECT}))
    assert result.score == result.max_score


def test_points_split_evenly_within_a_rubric_item(minisession, minispec):
    tests = by_name(minisession.grade(minispec.reference))
    # SkipBlock/structure is worth 4 points over two tests
    assert tests["test_equivalence"].max_score == pytest.approx(2.0)
    assert tests["test_shape"].max_score == pytest.approx(2.0)
    assert tests["test_param_count"].max_score == pytest.approx(4.0)


def test_wrong_behaviour_fails_with_expected_and_found(minisession, make_submission):
    wrong = CORRECT.replace("x + F.relu(self.body(x))", "F.relu(self.body(x))").replace("padding=1", "padding=1, bias=False")
    tests = by_name(minisession.grade(make_submission({"blocks.py": wrong})))
    params = tests["test_param_count"]
    assert params.outcome is Outcome.failed and params.score == 0
    assert params.expected == "148" and params.found == "144"
    assert tests["test_equivalence"].outcome is Outcome.failed
    assert tests["test_double"].outcome is Outcome.passed


def test_missing_class_and_not_implemented_are_errors_with_hints(minisession, make_submission):
    source = "def double(x):\n    raise NotImplementedError('TODO')\n"
    result = minisession.grade(make_submission({"blocks.py": source}))
    tests = by_name(result)
    assert tests["test_param_count"].outcome is Outcome.error
    assert "defines no SkipBlock" in tests["test_param_count"].message
    assert "not implemented" in tests["test_double"].message
    assert result.score == 0


def test_import_error_is_reported_once_with_the_students_traceback(minisession, make_submission):
    result = minisession.grade(make_submission({"blocks.py": "import torch\nx = 1 +\n"}))
    assert result.score == 0
    [problem] = [p for p in result.problems if p.file == "blocks.py"]
    assert "SyntaxError" in problem.message
    assert all(t.outcome is Outcome.error for t in result.tests)


def test_printed_output_reaches_the_test_result(minisession, make_submission):
    noisy = CORRECT.replace("return x * 2", "print('half way <b>there</b>')\n    return x * 2")
    tests = by_name(minisession.grade(make_submission({"blocks.py": noisy})))
    assert "half way <b>there</b>" in tests["test_double"].stdout


def test_missing_file_is_a_problem_not_a_crash(minisession, make_submission):
    result = minisession.grade(make_submission({"notes.txt": "hello"}))
    assert any(p.kind == "missing" and p.file == "blocks.py" for p in result.problems)
    assert result.score == 0 and len(result.tests) == 4


def test_targets_restrict_the_suite(minisession, minispec):
    result = minisession.grade(minispec.reference, targets={"double"})
    assert [t.target for t in result.tests] == ["double"]
    assert result.max_score == 2


def test_gradescope_rendering_has_the_contract_fields(minisession, minispec):
    data = minisession.grade(minispec.reference).to_gradescope()
    assert {"score", "max_score", "execution_time", "tests"} <= data.keys()
    for t in data["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility", "tags"} <= t.keys()
        assert t["status"] in ("passed", "failed")
        assert len(t["tags"]) == 2


def _session_for(course):
    from grader.grading.engine import GradingSession
    from grader.spec import load_spec

    return GradingSession(load_spec(course))


def test_a_test_without_grade_marker_is_a_suite_error(minicourse_copy):
    (minicourse_copy / "hidden" / "test_extra.py").write_text("def test_unmarked(student):\n    pass\n")
    with _session_for(minicourse_copy) as session, pytest.raises(SuiteError, match="no @grade"):
        session.grade(minicourse_copy / "reference")


def test_a_rubric_item_without_tests_is_a_suite_error(minicourse_copy):
    suite = minicourse_copy / "hidden" / "test_blocks.py"
    suite.write_text(suite.read_text().replace('@grade("double", "api")', '@grade("SkipBlock", "params")'))
    with _session_for(minicourse_copy) as session, pytest.raises(SuiteError, match="double/api has no test"):
        session.grade(minicourse_copy / "reference")


def test_failures_do_not_pay_for_pytest_tracebacks(minisession, make_submission, monkeypatch):
    """Messages come from the suite's own exceptions; pytest's source-annotated tracebacks
    (an AST parse of every file in every traceback, seconds per failing submission) are never built."""
    styles = []
    original = pytest.ExceptionInfo.getrepr

    def getrepr(self, *args, **kwargs):
        styles.append(kwargs.get("style", "long"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pytest.ExceptionInfo, "getrepr", getrepr)
    source = "def double(x):\n    raise NotImplementedError('TODO')\n"
    result = minisession.grade(make_submission({"blocks.py": source}))
    assert [t for t in result.tests if t.outcome is not Outcome.passed]
    assert styles and set(styles) <= {"native", "value"}


def test_an_internal_suite_bug_is_flagged_not_blamed_on_the_student(minicourse_copy):
    suite = minicourse_copy / "hidden" / "test_blocks.py"
    suite.write_text(suite.read_text().replace('check_equal(student.call("double", 21), 42, "double(21)")',
                                               'raise KeyError("suite bug")'))
    with _session_for(minicourse_copy) as session:
        result = session.grade(minicourse_copy / "reference")
    [test] = [t for t in result.tests if t.target == "double"]
    assert test.outcome is Outcome.error and "not your fault" in test.message
    assert any(f.kind == "internal" and "suite bug" in f.detail for f in result.flags)


def test_the_total_time_limit_stops_the_rest_and_is_flagged(minicourse_copy, make_submission):
    toml = minicourse_copy / "assignment.toml"
    toml.write_text(toml.read_text().replace("submission_timeout_s = 120", "submission_timeout_s = 1"))
    slow = CORRECT.replace("return x + F.relu(self.body(x))", "import time; time.sleep(0.8)\n            return x + F.relu(self.body(x))")
    with _session_for(minicourse_copy) as session:
        result = session.grade(make_submission({"blocks.py": slow}))
    assert any(f.kind == "timeout" and "total limit of 1 s" in f.detail for f in result.flags)
    late = [t for t in result.tests if "total time limit" in t.message]
    assert late and all(t.score == 0 for t in late)


def test_bonus_points_are_extra_credit(minicourse_copy):
    toml = minicourse_copy / "assignment.toml"
    toml.write_text(toml.read_text().replace('target = "double"\ncategory = "api"', 'target = "double"\ncategory = "bonus"')
                    .replace("total_points = 10", "total_points = 8"))
    suite = minicourse_copy / "hidden" / "test_blocks.py"
    suite.write_text(suite.read_text().replace('@grade("double", "api")', '@grade("double", "bonus")'))
    with _session_for(minicourse_copy) as session:
        result = session.grade(minicourse_copy / "reference")
    assert result.max_score == 8 and result.score == 10
    assert [t.max_score for t in result.tests if t.category == "bonus"] == [2]


def test_no_conftest_above_the_hidden_suite_configures_it(minicourse_copy, tmp_path):
    """Only the suite's own conftest files are loaded: one in a folder above it (a course repository's own
    tests, say) never runs while grading."""
    from grader.grading.engine import GradingSession
    from grader.spec import load_spec

    marker = tmp_path / "loaded"
    for folder in (minicourse_copy.parent, minicourse_copy):
        (folder / "conftest.py").write_text(f"open({str(marker)!r}, 'a').write('{folder.name} ')\n"
                                            "raise RuntimeError('a conftest outside the suite was loaded')\n")
    spec = load_spec(minicourse_copy)
    with GradingSession(spec) as session:
        result = session.grade(spec.reference, "ref")
    assert result.score == result.max_score
    assert not marker.exists()
