"""First checks for modern.py: ModernCNN builds and gives the right shape.

They do not check the values your network computes; the grader does that.
"""

import torch
from torch import nn

from modern import ModernCNN


def test_modern_cnn_output_shape():
    model = ModernCNN(num_classes=10).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 10)


def test_modern_cnn_parameter_count():
    # From the docstring: 11,100,042, the stem convolution's bias included
    model = ModernCNN(num_classes=10)
    assert isinstance(model, nn.Module)
    assert sum(p.numel() for p in model.parameters()) == 11_100_042
