"""First checks for vgg.py: the classes exist, build, and give the right shapes.

They do not check the values your network computes; the grader does that.
"""

import pytest
import torch
from torch import nn

from vgg import SimplifiedVGG, VGGBlock


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_vgg_block_is_a_module():
    assert isinstance(VGGBlock(3, 64, 2), nn.Module)


@pytest.mark.parametrize(("args", "shape", "expected"), [
    ((3, 64, 2), (2, 3, 32, 32), (2, 64, 16, 16)),
    ((64, 128, 3), (1, 64, 8, 8), (1, 128, 4, 4)),
])
def test_vgg_block_halves_the_image(args, shape, expected):
    out = VGGBlock(*args)(torch.randn(*shape))
    assert tuple(out.shape) == expected, f"VGGBlock{args} on {shape}: expected {expected}, got {tuple(out.shape)}"


def test_vgg_block_parameter_count():
    # From the docstring: (3*9*64 + 64) + (64*9*64 + 64)
    assert n_params(VGGBlock(3, 64, 2)) == 38_720


def test_simplified_vgg_output_shape():
    model = SimplifiedVGG(num_classes=10)
    out = model(torch.randn(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 10)


def test_simplified_vgg_parameter_count():
    # The lesson prints "Total parameters: 8,952,138"
    assert n_params(SimplifiedVGG(num_classes=10)) == 8_952_138
