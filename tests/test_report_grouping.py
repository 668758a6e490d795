"""Failed tests grouped into mistakes, the unit the class report counts."""

from __future__ import annotations

from resultfactory import make_result

from grader.report.grouping import mistake_key, mistakes_of, normalise
from grader.results import MistakeEntry, Outcome
from grader.results import TestResult as Result


def failed(target: str, name: str, *, hint: str | None = None, message: str = "differs", cause: str | None = None,
           outcome: Outcome = Outcome.failed, points: float = 1.0) -> Result:
    return Result(name=name, nodeid=f"test_x.py::{name}", target=target, category="structure", score=0.0,
                      max_score=points, outcome=outcome, message=message, hint=hint, cause=cause)


def test_numbers_and_quoted_values_do_not_split_a_mistake():
    a = "the 5x5 branch has padding=1: it needs padding=2 (+1,024 parameters)"
    b = "the 5x5 branch has padding=0: it needs padding=2 (-3.5 parameters)"
    assert normalise(a) == normalise(b)
    assert normalise("attribute 'conv1' is a plain tensor") == normalise('attribute "weight" is a plain tensor')
    assert normalise("Stride  2 on\nconv2.") == "stride # on conv2"


def test_kernel_sizes_and_layer_names_still_tell_mistakes_apart():
    assert normalise("the 5x5 branch has padding=1") != normalise("the 3x3 branch has padding=1")
    assert normalise("stride on conv1") != normalise("stride on conv2")


def test_the_named_cause_wins_over_the_wording():
    a = failed("ResidualBlock", "a", hint="ReLU before the addition", cause="ResidualBlock.relu_before_add")
    b = failed("ResNet", "b", hint="the output differs", cause="ResidualBlock.relu_before_add")
    c = failed("ResidualBlock", "c", hint="ReLU before the addition")
    assert mistake_key(a) == mistake_key(b) != mistake_key(c)


def test_without_a_hint_the_class_and_message_decide():
    a = failed("VGGBlock", "a", message="VGGBlock(3, 64) output differs by 0.52")
    b = failed("VGGBlock", "b", message="VGGBlock(3, 64) output differs by 1.7")
    c = failed("SimplifiedVGG", "c", message="VGGBlock(3, 64) output differs by 0.52")
    assert mistake_key(a) == mistake_key(b) != mistake_key(c)


def test_one_mistake_failing_many_tests_is_one_mistake_holding_them_all():
    result = make_result("x", p_pass=1.0, broken_files=(), flags=False)
    hint = "the 5x5 branch has padding={}: it needs 2"
    result.tests = [
        failed("InceptionModule", "output shape", hint=hint.format(1), points=1.0),
        failed("InceptionModule", "parameter count", hint=hint.format(1), points=1.5),
        failed("SimplifiedInception", "output shape", hint=hint.format(0), points=2.0),
        failed("InceptionModule", "concatenates on channels", hint="torch.cat on dim=0"),
        failed("InceptionModule", "imports", hint=hint.format(1), outcome=Outcome.error),  # not a mistake: an error
        failed("InceptionModule", "on CUDA", hint=hint.format(1), outcome=Outcome.skipped),
    ]
    found = mistakes_of(result)
    assert len(found) == 2
    padding, cat = found
    assert padding.target == "InceptionModule" and padding.title == hint.format(1)
    assert padding.tests == (("InceptionModule", "output shape"), ("InceptionModule", "parameter count"),
                             ("SimplifiedInception", "output shape"))
    assert padding.points_lost == 4.5
    assert cat.tests == (("InceptionModule", "concatenates on channels"),) and cat.points_lost == 1.0
    assert mistakes_of(make_result("y", p_pass=1.0, broken_files=(), flags=False)) == []


def test_mistakes_diagnosed_at_grading_are_used_as_they_are():
    result = make_result("x", p_pass=1.0, broken_files=(), flags=False)
    first = failed("InceptionModule", "output shape", hint="padding=1 in the 5x5 branch", points=1.0)
    second = failed("SimplifiedInception", "output shape", hint="the output differs", points=2.0)
    result.tests = [first.model_copy(update={"mistake": "InceptionModule.padding"}),
                    second.model_copy(update={"mistake": "InceptionModule.padding"}),
                    failed("InceptionModule", "stub", outcome=Outcome.error).model_copy(update={"mistake": "stub"})]
    result.mistakes = [
        MistakeEntry(key="InceptionModule.padding", kind="behaviour", target="InceptionModule", summary="shape differs",
                     hint="the 5x5 branch needs padding=2", tests=["output shape", "output shape"], points_lost=3.0),
        MistakeEntry(key="stub", kind="not_implemented", target="InceptionModule", summary="not implemented yet",
                     tests=["stub"], points_lost=1.0),
    ]
    result.mistakes[0].named = True  # the suite named the cause: its key is kept
    padding, stub = mistakes_of(result)
    assert (padding.key, padding.kind, padding.target) == ("InceptionModule.padding", "behaviour", "InceptionModule")
    assert padding.title == "the 5x5 branch needs padding=2" and padding.points_lost == 3.0
    assert padding.tests == (("InceptionModule", "output shape"), ("SimplifiedInception", "output shape"))
    assert (stub.kind, stub.title, stub.tests) == ("not_implemented", "not implemented yet", (("InceptionModule", "stub"),))


def test_unnamed_mistakes_of_a_block_and_its_network_with_one_likely_cause_are_one():
    result = make_result("x", p_pass=1.0, broken_files=(), flags=False)
    hint = "A 5x5 convolution has padding={}; it needs padding=2. Layers that differ: {}."
    result.tests = [failed("InceptionModule", "shape", hint=hint.format(1, "Conv2d 5x5")).model_copy(update={"mistake": "a"}),
                    failed("SimplifiedInception", "shape", hint=hint.format(1, "MaxPool2d; Conv2d 5x5"),
                           points=2.0).model_copy(update={"mistake": "b"}),
                    failed("SimplifiedInception", "cat", hint="torch.cat on dim=0").model_copy(update={"mistake": "c"})]
    result.mistakes = [
        MistakeEntry(key="a", kind="behaviour", target="InceptionModule", file="inception.py", summary="x",
                     hint=result.tests[0].hint, points_lost=1.0),
        MistakeEntry(key="b", kind="behaviour", target="SimplifiedInception", file="inception.py", summary="y",
                     hint=result.tests[1].hint, points_lost=2.0),
        MistakeEntry(key="c", kind="behaviour", target="SimplifiedInception", file="inception.py", summary="z",
                     hint="torch.cat on dim=0", points_lost=1.0),
    ]
    padding, cat = mistakes_of(result)
    assert padding.target == "InceptionModule" and padding.points_lost == 3.0
    assert padding.tests == (("InceptionModule", "shape"), ("SimplifiedInception", "shape"))
    assert cat.tests == (("SimplifiedInception", "cat"),)
    other = result.model_copy(deep=True)
    other.mistakes[0].hint = other.mistakes[1].hint = hint.format(0, "Conv2d 5x5 8->16")
    assert [m.key for m in mistakes_of(other)] == [padding.key, cat.key]  # another student, another padding
    elsewhere = result.model_copy(deep=True)
    elsewhere.mistakes[1].file = "mobilenet.py"  # one wording in two files: two mistakes
    assert len(mistakes_of(elsewhere)) == 3


def test_a_block_mistake_named_again_in_its_network_is_one_under_the_block_cause():
    result = make_result("x", p_pass=1.0, broken_files=(), flags=False)
    hint = "A 5x5 convolution has padding=1; it needs padding=2. Layers that differ: {}."
    result.tests = [failed("InceptionModule", "shape", hint=hint.format("a")).model_copy(update={"mistake": "I.pad"}),
                    failed("SimplifiedInception", "eval", hint=hint.format("b")).model_copy(update={"mistake": "S.pad"})]
    result.mistakes = [
        MistakeEntry(key="I.pad", kind="behaviour", target="InceptionModule", file="inception.py", summary="x",
                     hint=result.tests[0].hint, named=True, points_lost=1.0),
        MistakeEntry(key="S.pad", kind="behaviour", target="SimplifiedInception", file="inception.py", summary="y",
                     hint=result.tests[1].hint, named=True, points_lost=1.0),
    ]
    (only,) = mistakes_of(result)
    assert only.key == "I.pad" and only.target == "InceptionModule" and len(only.tests) == 2
