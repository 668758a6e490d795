"""First checks for resnet.py: the classes exist, build, and give the right shapes.

They do not check the values your blocks compute or how the skip connection
works; the grader does that.
"""

import pytest
import torch
from torch import nn

from resnet import NoSkipBlock, ResidualBlock, ResNet, WithSkipBlock, resnet18


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_residual_block_is_a_module():
    assert isinstance(ResidualBlock(64, 128, 2), nn.Module)


@pytest.mark.parametrize(("args", "expected"), [
    ((64, 64, 1), (2, 64, 8, 8)),
    ((64, 128, 2), (2, 128, 4, 4)),
    ((64, 128, 1), (2, 128, 8, 8)),
    ((64, 64, 2), (2, 64, 4, 4)),
])
def test_residual_block_shapes(args, expected):
    block = ResidualBlock(*args).eval()
    out = block(torch.randn(2, 64, 8, 8))
    assert tuple(out.shape) == expected, f"ResidualBlock{args}: expected {expected}, got {tuple(out.shape)}"


@pytest.mark.parametrize(("args", "expected"), [((64, 64), 73_984), ((64, 128, 2), 230_144)])
def test_residual_block_parameter_counts(args, expected):
    # From the docstring: 73,984 without a projection, 230,144 with one
    assert n_params(ResidualBlock(*args)) == expected


def test_resnet_output_shape():
    model = ResNet([2, 2, 2, 2], 10).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 10)


def test_resnet18_parameter_count():
    # The lesson prints "Total parameters: 11,173,962" for ResNet([2, 2, 2, 2])
    model = resnet18()
    assert isinstance(model, nn.Module)
    assert n_params(model) == 11_173_962


@pytest.mark.parametrize("cls", [NoSkipBlock, WithSkipBlock])
def test_comparison_blocks_keep_the_shape(cls):
    out = cls(16)(torch.randn(2, 16, 8, 8))
    assert tuple(out.shape) == (2, 16, 8, 8)
    # From the docstring: the skip connection itself has no parameters
    assert n_params(cls(16)) == 4_640
