"""The demo class graded by mistake: each of bob's, carol's and dave's mistakes listed once."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

# bob's submission against the reference (see tests/test_demo_class.py): two mistakes in ResidualBlock (ReLU
# before the addition; a projection on every block), the depthwise conv without groups=, and the Inception
# 5x5 branch with padding=1. His ResNet, MobileNetV1, SimplifiedInception, ModernCNN and scaling.py are right:
# they fail only through the blocks they are built from, and the stand-ins keep them from being charged again.
BOB_MISTAKES = {"ResidualBlock.relu_before_add": "ResidualBlock", "ResidualBlock.projection_always": "ResidualBlock",
                "InceptionModule.branch_padding": "InceptionModule",
                "DepthwiseSeparableConv.no_groups": "DepthwiseSeparableConv"}

# carol: VGG and ResNet done; everything else is still the skeleton's NotImplementedError.
CAROL_STUBS = ["InceptionModule", "SimplifiedInception", "DepthwiseSeparableConv", "MobileNetV1", "ModernCNN",
               "get_device", "train_one_epoch", "evaluate", "train_and_compare", "first_conv", "filter_grid",
               "feature_maps", "save_filter_grid", "save_feature_maps", "compound_coefficients", "round_channels",
               "round_depth", "round_resolution", "ScaledResNet", "efficientnet_style"]


def test_bob_what_to_fix_lists_each_distinct_mistake_once(graded_demo):
    result, _ = graded_demo["bob"]
    found = {m.key: m.target for m in result.mistakes}
    assert found == BOB_MISTAKES, [(m.target, m.key, m.summary[:80]) for m in result.mistakes]
    assert all(m.named for m in result.mistakes)
    # the ReLU before the addition is named in every output test of his block, not only where it shows alone
    relu = next(m for m in result.mistakes if m.key == "ResidualBlock.relu_before_add")
    assert {"test_identity_shortcut", "test_block_matches_eval", "test_block_matches_train"} <= set(relu.tests)
    # every failed test is under one of them
    failed = {t.nodeid for t in result.tests if t.outcome.value in ("failed", "error")}
    assert failed == {n for m in result.mistakes for n in m.tests}


def test_carol_has_one_mistake_per_unimplemented_class(graded_demo):
    result, _ = graded_demo["carol"]
    assert [m.kind for m in result.mistakes] == ["not_implemented"] * len(CAROL_STUBS)
    assert sorted(m.target for m in result.mistakes) == sorted(CAROL_STUBS)
    inception = next(m for m in result.mistakes if m.target == "InceptionModule")
    assert inception.summary.startswith("InceptionModule is not implemented yet: 0/8 points")
    # every test of a stub is under its class's one entry, and nothing else failed
    failed = {t.nodeid for t in result.tests if t.outcome.value in ("failed", "error")}
    assert failed == {n for m in result.mistakes for n in m.tests}


def test_dave_has_one_mistake_per_file_that_does_not_import_at_its_file_and_line(graded_demo):
    result, folder = graded_demo["dave"]
    imports = [m for m in result.mistakes if m.kind == "import"]
    assert sorted((m.file, m.line) for m in imports) == [("resnet.py", 20), ("vgg.py", 32)]
    resnet = next(m for m in imports if m.file == "resnet.py")
    assert "SyntaxError" in resnet.summary and "modern.py" in resnet.summary and "scaling.py" in resnet.summary
    # modern.py and scaling.py do not import because they import resnet.py: their tests are resnet.py's mistake
    targets = {t.target for t in result.tests if t.nodeid in resnet.tests}
    assert {"ResidualBlock", "ModernCNN", "ScaledResNet", "round_channels"} <= targets
    assert not [m for m in result.mistakes if m.file in ("modern.py", "scaling.py")]
    # Gradescope's output points each failed test to its mistake
    tests = json.loads((folder / "results.json").read_text())["tests"]
    modern = next(t for t in tests if t["tags"][0] == "ModernCNN" and t["status"] == "failed")
    assert "in your report (ResidualBlock): resnet.py does not import" in modern["output"]
