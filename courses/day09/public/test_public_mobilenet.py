"""Public checks for mobilenet.py: shapes and the parameter counts the lesson prints.

Run `python -m pytest` in this folder. Passing these is a first step only: the
grader's own tests check much more (grouping, BatchNorm placement, training, ...).
"""

import torch
from torch import nn

from mobilenet import DepthwiseSeparableConv, MobileNetV1


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_depthwise_separable_output_shape():
    block = DepthwiseSeparableConv(32, 64)
    assert block(torch.randn(2, 32, 16, 16)).shape == (2, 64, 16, 16)


def test_depthwise_separable_stride_halves_the_image():
    block = DepthwiseSeparableConv(32, 64, stride=2)
    assert block(torch.randn(2, 32, 16, 16)).shape == (2, 64, 8, 8)


def test_depthwise_separable_parameter_count():
    # the lesson's comparison: 18,496 for a standard Conv2d(32, 64, 3, padding=1), 2,528 here
    standard = nn.Conv2d(32, 64, kernel_size=3, padding=1)
    assert count(standard) == 18_496
    assert count(DepthwiseSeparableConv(32, 64)) == 2_528


def test_mobilenet_output_shape():
    model = MobileNetV1(num_classes=10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_mobilenet_parameter_count():
    assert count(MobileNetV1(num_classes=10)) == 274_250
