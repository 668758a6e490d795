"""Public checks for inception.py: shapes and the parameter counts the lesson prints.

Run `python -m pytest` in this folder. Passing these is a first step only: the
grader's own tests check much more (what each branch computes, training, ...).
"""

import torch
from torch import nn

from inception import InceptionModule, SimplifiedInception


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_inception_module_is_a_module():
    # InceptionModule(in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), positionally
    assert isinstance(InceptionModule(64, 32, 48, 64, 8, 16, 16), nn.Module)


def test_inception_module_output_shape():
    block = InceptionModule(64, 32, 48, 64, 8, 16, 16)
    out = block(torch.randn(2, 64, 16, 16))
    # 32 + 64 + 16 + 16 = 128 channels, same height and width
    assert out.shape == (2, 128, 16, 16)


def test_inception_module_parameter_count():
    assert count(InceptionModule(64, 32, 48, 64, 8, 16, 16)) == 37_688


def test_simplified_inception_output_shape():
    model = SimplifiedInception(num_classes=10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_simplified_inception_parameter_count():
    assert count(SimplifiedInception(num_classes=10)) == 583_410
