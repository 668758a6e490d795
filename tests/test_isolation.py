"""Each mistake charged once: dependencies in the spec, stand-ins for failed blocks, lazy layers materialised."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from grader.grading.engine import GradingSession
from grader.results import Outcome
from grader.spec import SpecError, load_spec

TOWER = textwrap.dedent('''

    class Tower(nn.Module):
        """depth SkipBlocks, then a 1x1 convolution: (N, C, H, W) -> (N, C, H, W)."""

        def __init__(self, channels: int, depth: int) -> None:
            super().__init__()
            self.blocks = nn.Sequential(*[SkipBlock(channels) for _ in range(depth)])
            self.head = nn.Conv2d(channels, channels, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.blocks(x))
''')

# Named test_a_* so that pytest collects it before the SkipBlock tests: the plugin must reorder.
TOWER_TESTS = textwrap.dedent('''
    import torch

    from grader.testing import check, check_equal, grade


    @grade("Tower", "params")
    def test_tower_params(student, reference):
        """Tower(4, 2) has the reference's parameter count."""
        got = student.build("Tower", 4, 2).probe("param_count")["total"]
        want = reference.build("Tower", 4, 2).probe("param_count")["total"]
        check_equal(got, want, "parameter count")


    @grade("Tower", "structure")
    def test_tower_equivalence(student, reference):
        """Tower(4, 2) computes the reference's function."""
        got = student.build("Tower", 4, 2).probe("keyed_forward", input_shape=[2, 4, 5, 5])["output"]
        want = reference.build("Tower", 4, 2).probe("keyed_forward", input_shape=[2, 4, 5, 5])["output"]
        check(got.shape == want.shape and bool(torch.allclose(torch.from_numpy(got), torch.from_numpy(want))),
              "outputs differ from the reference")
''')

STAND_INS = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class SkipBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.mix = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            return F.relu(self.mix(x))
''')

SPEC_EXTRA = textwrap.dedent('''
    [[rubric]]
    target = "Tower"
    category = "params"
    points = 2

    [[rubric]]
    target = "Tower"
    category = "structure"
    points = 2
''')

WRONG_BLOCK = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class SkipBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

        def forward(self, x):
            return F.relu(self.conv(x))          # the skip is missing


    class Tower(nn.Module):
        def __init__(self, channels, depth):
            super().__init__()
            self.layers = nn.ModuleList([SkipBlock(channels) for _ in range(depth)] + [nn.Conv2d(channels, channels, 1)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x


    def double(x):
        return x * 2
''')


def tower_course(root: Path, policy: str = "isolate") -> Path:
    """The mini course with a Tower built from SkipBlocks, declared as its dependency."""
    (root / "reference" / "blocks.py").write_text((root / "reference" / "blocks.py").read_text() + TOWER)
    (root / "hidden" / "test_a_tower.py").write_text(TOWER_TESTS)
    (root / "stand_ins.py").write_text(STAND_INS)
    spec = (root / "assignment.toml").read_text()
    spec = spec.replace("total_points = 10", f'total_points = 14\ndependencies = "{policy}"\nstand_ins = "stand_ins.py"')
    spec = spec.replace('name = "SkipBlock"\nfile = "blocks.py"',
                        'name = "SkipBlock"\nfile = "blocks.py"\ndry_run_input = [1, "channels", 5, 5]')
    spec = spec.replace("[[rubric]]", '[[targets]]\nname = "Tower"\nfile = "blocks.py"\ndepends_on = ["SkipBlock"]\n'
                        'dry_run_input = [1, "channels", 5, 5]\n\n[[rubric]]', 1)
    (root / "assignment.toml").write_text(spec + SPEC_EXTRA)
    return root


def by_target(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for t in result.tests:
        out.setdefault(t.target, []).append(t)
    return out


# ----------------------------------------------------------------------------- the spec

def test_day09_stand_ins_run_in_every_configuration_the_networks_use():
    """A stand-in honours its contract for several blocks per stage (each layer reads its predecessor's width)."""
    import importlib.util

    import torch

    from grader.spec import find_spec

    loader = importlib.util.spec_from_file_location("day09_stand_ins", find_spec("day09").stand_ins)
    stand_ins = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(stand_ins)
    x = torch.randn(2, 3, 32, 32)
    for blocks, classes in [([2, 2, 2, 2], 10), ([1, 2, 1, 2], 7), ([3, 4, 6, 3], 5)]:
        assert stand_ins.ResNet(blocks, classes)(x).shape == (2, classes)
    assert stand_ins.ScaledResNet(0.5, 1.5, 7)(x).shape == (2, 7)


def test_day09_declares_its_blocks_as_dependencies():
    from grader.spec import find_spec

    spec = find_spec("day09")
    assert spec.dependencies == "isolate"
    assert spec.dependencies_of("ResNet") == ["ResidualBlock"]
    assert spec.dependencies_of("efficientnet_style") == ["ScaledResNet", "ResidualBlock"]
    assert spec.dependencies_of("SimplifiedVGG") == ["VGGBlock"]
    assert spec.dependencies_of("SimplifiedInception") == ["InceptionModule"]
    assert spec.dependencies_of("MobileNetV1") == ["DepthwiseSeparableConv"]
    assert spec.dependencies_of("ModernCNN") == ["ResidualBlock"]
    assert spec.dependencies_of("ResidualBlock") == []
    order = spec.dependency_order()
    assert order["ResidualBlock"] < order["ResNet"] < order["resnet18"]
    assert order["ScaledResNet"] < order["efficientnet_style"]


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('depends_on = ["SkipBlock"]', 'depends_on = ["Nothing"]'), "unknown target 'Nothing'"),
    (lambda s: s.replace('depends_on = ["SkipBlock"]', 'depends_on = ["Tower"]'), "depends on itself"),
    (lambda s: s.replace('dependencies = "isolate"', 'dependencies = "sometimes"'), "dependencies"),
    (lambda s: s.replace('stand_ins = "stand_ins.py"\n', ''), "needs a stand-ins file"),
    (lambda s: s.replace('stand_ins = "stand_ins.py"', 'stand_ins = "nowhere.py"'), "is not a file"),
    (lambda s: s.replace('name = "SkipBlock"\nfile = "blocks.py"\n',
                         'name = "SkipBlock"\nfile = "blocks.py"\ndepends_on = ["Tower"]\n'), "circular dependencies"),
    (lambda s: s.replace('depends_on = ["SkipBlock"]', 'depends_on = ["double"]'), "double is a function"),
])
def test_bad_dependencies_are_refused_with_the_reason(minicourse_copy, edit, message):
    tower_course(minicourse_copy)
    path = minicourse_copy / "assignment.toml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec(minicourse_copy)


def test_a_stand_in_must_define_the_block(minicourse_copy):
    tower_course(minicourse_copy)
    (minicourse_copy / "stand_ins.py").write_text("class Other:\n    pass\n")
    with pytest.raises(SpecError, match="defines no class SkipBlock"):
        load_spec(minicourse_copy)


# ----------------------------------------------------------------------------- grading

@pytest.fixture
def wrong_block(make_submission):
    return make_submission({"blocks.py": WRONG_BLOCK}, name="wrong_block")


def test_isolate_judges_the_tower_with_a_stand_in_for_the_failed_block(minicourse_copy, wrong_block, tmp_path):
    from grader.report import write_student_report

    spec = load_spec(tower_course(minicourse_copy))
    with GradingSession(spec) as session:
        result = session.grade(wrong_block)
    tests = by_target(result)
    assert any(t.outcome is Outcome.failed for t in tests["SkipBlock"])
    assert all(t.outcome is Outcome.passed for t in tests["Tower"]), [t.message for t in tests["Tower"]]
    assert sum(t.score for t in tests["Tower"]) == pytest.approx(4.0)
    for t in tests["Tower"]:
        assert t.notes and "stand-in for SkipBlock" in t.notes[0] and "Note: Judged with" in t.feedback()
    assert not any(t.notes for t in tests["SkipBlock"])
    write_student_report(result, tmp_path / "report")
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Judged with the course&#39;s stand-in for SkipBlock" in page or "Judged with the course's stand-in for SkipBlock" in page


def test_cumulative_charges_the_block_again_in_the_tower(minicourse_copy, wrong_block):
    spec = load_spec(tower_course(minicourse_copy, policy="cumulative"))
    with GradingSession(spec) as session:
        result = session.grade(wrong_block)
    tests = by_target(result)
    # the missing skip keeps the parameter count, so only the equivalence test is charged again
    assert [t.outcome for t in tests["Tower"] if t.category == "structure"] == [Outcome.failed]
    assert not any(t.notes for t in result.tests)


def test_a_tower_built_from_a_block_of_another_name_keeps_its_own_block(minicourse_copy, make_submission):
    # SkipBlock is wrong and Tower uses a copy of it under another name: the stand-in cannot be put in,
    # so Tower is judged with its own (wrong) block, on both sides without the stand-in.
    other_name = WRONG_BLOCK.replace("[SkipBlock(channels)", "[Renamed(channels)") + "\n\nclass Renamed(SkipBlock):\n    pass\n"
    spec = load_spec(tower_course(minicourse_copy))
    with GradingSession(spec) as session:
        result = session.grade(make_submission({"blocks.py": other_name}, name="renamed"))
    tests = by_target(result)
    assert [t.outcome for t in tests["Tower"] if t.category == "structure"] == [Outcome.failed]
    assert not any(t.notes for t in tests["Tower"])


def test_a_right_tower_on_a_right_block_needs_no_stand_in(minicourse_copy):
    spec = load_spec(tower_course(minicourse_copy))
    with GradingSession(spec) as session:
        result = session.grade(spec.reference)
    assert result.score == result.max_score == pytest.approx(14.0)
    assert not any(t.notes for t in result.tests)


LAZY_BLOCK = textwrap.dedent('''
    import torch.nn as nn
    import torch.nn.functional as F


    class SkipBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.LazyConv2d(channels, 3, padding=1)

        def forward(self, x):
            return F.relu(self.conv(x)) + x


    def double(x):
        return x + x
''')


def test_lazy_layers_are_materialised_before_counting_and_the_report_says_so(minispec, make_submission, minicourse_copy):
    tower_course(minicourse_copy)
    spec = load_spec(minicourse_copy)
    with GradingSession(spec) as session:
        result = session.grade(make_submission({"blocks.py": LAZY_BLOCK + TOWER.replace("torch.Tensor", "object")},
                                               name="lazy"))
    tests = by_target(result)
    assert all(t.outcome is Outcome.passed for t in tests["SkipBlock"]), [t.message for t in tests["SkipBlock"]]
    params = next(t for t in tests["SkipBlock"] if t.category == "params")
    assert any("lazy layers" in n and "(1, 4, 5, 5)" in n for n in params.notes)
    assert result.score == result.max_score


# ----------------------------------------------------------------------------- the Day 9 corpus (slow)

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = ("ResidualBlock", "VGGBlock", "InceptionModule", "DepthwiseSeparableConv")


def _block_cases(report):
    """Wrong cases whose one mistake is in a block (their description names the block first)."""
    return [r for r in report.results
            if r.case.kind == "wrong" and r.case.description.split(":", 1)[0] in BLOCKS and r.unavailable is None]


@pytest.mark.slow
def test_a_block_mistake_costs_nothing_in_the_networks_built_from_it(graded_corpus):
    cases = _block_cases(graded_corpus)
    assert len(cases) >= 30
    problems = []
    for r in cases:
        block = r.case.description.split(":", 1)[0]
        dependents = [t for t in r.graded_targets if t != block and block in graded_corpus_spec().dependencies_of(t)]
        assert dependents, f"{r.case.label}: no network built from {block} was graded"
        assert any(f.target == block for f in r.failed), f"{r.case.label}: not caught by {block}'s own tests"
        elsewhere = [f"{f.target}/{f.category}: {f.name}" for f in r.failed if f.target != block]
        if elsewhere:
            problems.append(f"{r.case.label}: {'; '.join(elsewhere)}")
    assert not problems, "\n".join(problems)


def graded_corpus_spec():
    from grader.spec import find_spec

    return find_spec("day09")


@pytest.mark.slow
def test_a_fixed_size_pool_costs_only_the_input_size_tests(graded_corpus):
    cases = [r for r in graded_corpus.results if r.case.name.endswith("_fixed_avg_pool")]
    assert {r.case.name for r in cases} >= {"inception_fixed_avg_pool", "mobilenet_fixed_avg_pool"}
    for r in cases:
        assert r.failed, f"{r.case.label} escaped"
        assert {(f.target, f.category) for f in r.failed} == {(r.case.targets[0], "shape")}, r.failed
        assert all("odd sizes" in f.name for f in r.failed)


@pytest.mark.slow
def test_textbook_lazy_layers_get_full_marks(graded_corpus):
    cases = [r for r in graded_corpus.results if r.case.name.endswith("_lazy_layers")]
    assert {r.case.name for r in cases} == {"resnet_lazy_layers", "inception_lazy_layers", "vgg_lazy_layers"}
    for r in cases:
        assert r.ok and not r.failed and r.lost == 0 and r.score > 0, r.verdict()


def _with_biased_block(resnet_source: str) -> str:
    """The same file with conv biases before BatchNorm in ResidualBlock (a second, independent mistake)."""
    start, end = resnet_source.index("class ResidualBlock"), resnet_source.index("class ResNet")
    block = resnet_source[start:end]
    assert "bias=False" in block
    return resnet_source[:start] + block.replace("bias=False", "bias=True") + resnet_source[end:]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["resnet_wrong_stage_strides", "resnet_no_stem_relu", "resnet_block_too_few"])
def test_a_networks_own_mistake_is_caught_with_the_stand_in_in_place(case, tmp_path):
    from grader.authoring.audit import build_submission, load_case
    from grader.spec import find_spec

    spec = find_spec("day09")
    folder = build_submission(spec, load_case(spec, "wrong", ROOT / "tests" / "corpus" / "wrong" / case), tmp_path / case)
    (folder / "resnet.py").write_text(_with_biased_block((folder / "resnet.py").read_text()))
    with GradingSession(spec) as session:
        result = session.grade(folder, targets={"ResidualBlock", "ResNet"})
    tests = by_target(result)
    assert any(t.outcome is Outcome.failed for t in tests["ResidualBlock"])
    failed = [t for t in tests["ResNet"] if t.outcome is Outcome.failed]
    assert failed, f"{case}: ResNet's own mistake escaped once its block was replaced"
    assert all(any("stand-in for ResidualBlock" in n for n in t.notes) for t in failed)


@pytest.mark.slow
def test_bobs_scaling_is_not_charged_for_his_residual_block(graded_demo):
    result, _ = graded_demo["bob"]
    tests = by_target(result)
    assert any(t.outcome is Outcome.failed for t in tests["ResidualBlock"])
    for target in ("ScaledResNet", "efficientnet_style", "ResNet", "ModernCNN", "resnet18"):
        assert not [t.message for t in tests[target] if t.outcome in (Outcome.failed, Outcome.error)]
    assert any("stand-in for ResidualBlock" in n for t in tests["efficientnet_style"] for n in t.notes)
