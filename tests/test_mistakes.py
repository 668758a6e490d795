"""Mistakes as the unit of results: failures grouped by root cause, each charged once."""

from __future__ import annotations

import textwrap
import time

from grader.grading.mistakes import diagnose, locate_import_error, normalise
from grader import results
from grader.results import Outcome, Problem

NOT_IMPLEMENTED = textwrap.dedent('''
    import torch.nn as nn
    class SkipBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            raise NotImplementedError("TODO: a conv and the skip")
    def double(x):
        return x * 2
''')

SYNTAX_ERROR = "import torch.nn as nn\n\nclass SkipBlock(nn.Module)\n    pass\n"

HANGS_IN_FORWARD = textwrap.dedent('''
    import torch.nn as nn
    class SkipBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        def forward(self, x):
            while True:
                pass
    def double(x):
        return x * 2
''')

MORE_FORWARD_TESTS = textwrap.dedent('''
    import pytest
    from grader.testing import check, grade

    @pytest.mark.parametrize("size", [5, 6, 7, 8])
    @grade("SkipBlock", "structure")
    def test_more_shapes(student, size):
        """SkipBlock(2) keeps the shape of its input."""
        got = student.build("SkipBlock", 2).probe("forward_shape", input_shape=[1, 2, size, size])["shape"]
        check(got == [1, 2, size, size], "output shape differs")
''')


def result(target, nodeid, outcome=Outcome.failed, *, message="", hint=None, cause=None, kind=None,
           max_score=1.0, symptom=False) -> results.TestResult:
    data = {"error_kind": kind} if kind else {}
    if symptom:
        data["symptom"] = True
    return results.TestResult(name=nodeid, nodeid=nodeid, target=target, category="structure", score=0.0,
                      max_score=max_score, outcome=outcome, message=message, hint=hint, cause=cause, data=data)


# ----------------------------------------------------------------------------- grading the mini course

def test_a_stub_is_one_mistake_per_class(minisession, make_submission):
    graded = minisession.grade(make_submission({"blocks.py": NOT_IMPLEMENTED}))
    [mistake] = graded.mistakes
    assert mistake.kind == "not_implemented" and mistake.target == "SkipBlock" and mistake.file == "blocks.py"
    assert mistake.summary.startswith("SkipBlock is not implemented yet: 0/8 points")
    failed = [t for t in graded.tests if t.target == "SkipBlock"]
    assert sorted(mistake.tests) == sorted(t.nodeid for t in failed) and len(failed) == 3
    assert all(t.mistake == mistake.key for t in failed)
    assert mistake.points_lost == 8


def test_a_file_that_does_not_import_is_one_mistake_at_its_line(minisession, make_submission):
    graded = minisession.grade(make_submission({"blocks.py": SYNTAX_ERROR}))
    [mistake] = graded.mistakes
    assert (mistake.kind, mistake.file, mistake.line) == ("import", "blocks.py", 3)
    assert "SyntaxError" in mistake.summary and "line 3" in mistake.summary
    assert len(mistake.tests) == len(graded.tests) == 4
    assert mistake.points_lost == graded.max_score


def test_a_missing_file_is_one_mistake(minisession, make_submission):
    graded = minisession.grade(make_submission({"other.py": "x = 1\n"}))
    [mistake] = graded.mistakes
    assert mistake.kind == "missing" and mistake.file == "blocks.py"
    assert "blocks.py is missing" in mistake.summary and len(mistake.tests) == 4


def test_the_reference_has_no_mistake(minisession, minispec):
    assert minisession.grade(minispec.reference).mistakes == []


def test_a_forward_that_never_returns_costs_one_timeout_per_class(minicourse_copy, make_submission):
    from grader.grading.engine import GradingSession
    from grader.spec import load_spec

    timeout = 1.5
    toml = minicourse_copy / "assignment.toml"
    toml.write_text(toml.read_text().replace("request_timeout_s = 5", f"request_timeout_s = {timeout}"))
    (minicourse_copy / "hidden" / "test_more.py").write_text(MORE_FORWARD_TESTS)
    with GradingSession(load_spec(minicourse_copy)) as session:
        session.sandbox  # started before the clock: only the grading is measured
        started = time.monotonic()
        graded = session.grade(make_submission({"blocks.py": HANGS_IN_FORWARD}))
        wall = time.monotonic() - started
    forward_tests = [t for t in graded.tests if t.target == "SkipBlock" and t.category == "structure"]
    assert len(forward_tests) == 6 and all(t.outcome is Outcome.error for t in forward_tests)
    timed_out = [t for t in forward_tests if "not run again" not in t.message]
    assert len(timed_out) == 1, [t.message for t in forward_tests]
    assert all("did not finish" in t.message for t in forward_tests)
    # one request timeout, not one per test: waiting in each would take at least 6 x 1.5 s = 9 s
    assert wall < len(forward_tests) * timeout, f"grading took {wall:.1f} s"
    # the parameter count only builds the block, so it still runs and passes
    [params] = [t for t in graded.tests if t.category == "params"]
    assert params.outcome is Outcome.passed
    [mistake] = graded.mistakes
    assert mistake.kind == "limit" and mistake.target == "SkipBlock" and len(mistake.tests) == 6


# ----------------------------------------------------------------------------- grouping rules

def test_failures_naming_one_cause_are_one_mistake_in_the_causes_class(minispec):
    tests = [
        result("SkipBlock", "t1", message="output differs", cause="SkipBlock.relu_after_add"),
        result("SkipBlock", "t2", message="gradient differs", cause="SkipBlock.relu_after_add", max_score=2),
        result("double", "t3", message="double(2) differs", cause="SkipBlock.relu_after_add"),
        result("double", "t4", message="returns a float"),
        result("double", "t5", Outcome.passed),
    ]
    keyed, mistakes = diagnose(minispec, tests, [])
    assert [m.key for m in mistakes] == ["SkipBlock.relu_after_add", "double:returns a float"]
    first = mistakes[0]
    assert first.target == "SkipBlock" and first.named and first.tests == ["t1", "t2", "t3"]
    assert first.points_lost == 4 and first.summary == "gradient differs"  # the costliest test speaks for it
    assert [t.mistake for t in keyed] == ["SkipBlock.relu_after_add"] * 3 + ["double:returns a float", None]


def test_without_a_cause_the_same_failure_in_the_same_class_is_one_mistake(minispec):
    tests = [
        result("SkipBlock", "a", message="SkipBlock(4) on (2, 4, 5, 5) raised an error", hint="the 3x3 conv has padding=0"),
        result("SkipBlock", "b", message="SkipBlock(3) on (1, 3, 9, 9) raised an error", hint="the 3x3 conv has padding=0"),
        result("SkipBlock", "c", message="SkipBlock(4) has 148 parameters, +4", hint="a bias where none belongs (+4)"),
        result("double", "d", message="x", hint="the 3x3 conv has padding=0"),
    ]
    _, mistakes = diagnose(minispec, tests, [])
    assert sorted(len(m.tests) for m in mistakes) == [1, 1, 2]
    assert [m.target for m in mistakes] == ["SkipBlock", "SkipBlock", "double"]
    assert normalise("ResidualBlock(64, 64) differs by 8.81") == normalise("ResidualBlock(8, 16, 2) differs by 0.5")


def test_a_symptom_joins_its_classs_mistake_with_evidence_a_named_one_first(minispec):
    tests = [
        result("SkipBlock", "params", message="SkipBlock(4) has 148 parameters, +4", hint="a bias (+4)", max_score=2),
        result("SkipBlock", "skip", message="the skip adds x twice", cause="SkipBlock.skip_twice"),
        result("SkipBlock", "eval", message="the output differs (8.81)", hint="stem, blocks", symptom=True),
        result("SkipBlock", "train", message="the output differs in train mode", hint="other text", symptom=True),
        result("double", "d", message="double(2) differs", hint="the whole output", symptom=True),
    ]
    keyed, mistakes = diagnose(minispec, tests, [])
    assert [(m.key, m.tests) for m in mistakes] == [
        ("SkipBlock.skip_twice", ["skip", "eval", "train"]), ("SkipBlock:a bias ()", ["params"]),
        ("double:the whole output", ["d"])]
    assert mistakes[0].summary == "the skip adds x twice"  # the named test speaks for the mistake
    assert [t.mistake for t in keyed] == ["SkipBlock:a bias ()"] + ["SkipBlock.skip_twice"] * 3 + ["double:the whole output"]
    # without a named cause, the costliest failure with evidence of its own takes them; with none, they are one
    unnamed = [t.model_copy(update={"cause": None}) if t.nodeid == "skip" else t for t in tests]
    _, mistakes = diagnose(minispec, unnamed, [])
    assert [m.tests for m in mistakes] == [["params", "eval", "train"], ["skip"], ["d"]]
    _, mistakes = diagnose(minispec, [t for t in tests if t.data.get("symptom")], [])
    assert [m.tests for m in mistakes] == [["eval", "train"], ["d"]]


def test_mistakes_come_blocks_first_then_by_points():
    from types import SimpleNamespace

    def target(name, *depends_on):
        return SimpleNamespace(name=name, file="net.py", kind="class", depends_on=list(depends_on))

    spec = SimpleNamespace(files=["net.py"], targets=[target("Net", "Block"), target("Block"), target("Other"),
                                                       target("Deep", "Net")])
    tests = [result("Deep", "deep", message="wrong", max_score=9),
             result("Net", "net", message="wrong", max_score=5),
             result("Block", "b1", message="small", max_score=1),
             result("Block", "b2", message="big", max_score=3),
             result("Other", "o", message="other", max_score=2)]
    _, mistakes = diagnose(spec, tests, [])
    assert [m.tests for m in mistakes] == [["b2"], ["o"], ["b1"], ["net"], ["deep"]]


def test_an_import_error_is_placed_in_the_file_where_it_is():
    files = ["vgg.py", "resnet.py", "modern.py", "scaling.py"]
    syntax = Problem(file="modern.py", kind="import",
                     message="modern.py failed to import: SyntaxError: expected ':' (resnet.py, line 20)",
                     detail='  File "modern.py", line 12, in <module>\n    from resnet import ResidualBlock\n'
                            "SyntaxError: expected ':' (resnet.py, line 20)\n")
    located = locate_import_error(syntax, files)
    assert (located.file, located.line) == ("resnet.py", 20)
    raised = Problem(file="vgg.py", kind="import", message="vgg.py failed to import: RuntimeError: shapes",
                     detail='  File "vgg.py", line 37, in <module>\n    print(model(x))\n'
                            '  File "vgg.py", line 32, in forward\n    return self.f(x)\nRuntimeError: shapes\n')
    located = locate_import_error(raised, files)
    assert (located.file, located.line) == ("vgg.py", 32)
    absent = Problem(file="modern.py", kind="import", message="modern.py failed to import: ModuleNotFoundError",
                     detail="ModuleNotFoundError: No module named 'resnet'\n")
    located = locate_import_error(absent, files)
    assert located.file == "resnet.py" and located.missing


# ----------------------------------------------------------------------------- feedback policy

def _with_policy(minicourse_copy, policy):
    from grader.grading.engine import GradingSession
    from grader.spec import load_spec

    toml = minicourse_copy / "assignment.toml"
    toml.write_text(toml.read_text().replace('total_points = 10', f'total_points = 10\nfeedback = "{policy}"'))
    return GradingSession(load_spec(minicourse_copy))


def test_the_feedback_policy_is_validated(minicourse_copy):
    import pytest

    from grader.spec import SpecError, load_spec

    toml = minicourse_copy / "assignment.toml"
    assert load_spec(minicourse_copy).feedback == "hints"
    toml.write_text(toml.read_text().replace('total_points = 10', 'total_points = 10\nfeedback = "everything"'))
    with pytest.raises(SpecError, match="feedback"):
        load_spec(minicourse_copy)
