"""Day 9's ModernCNN, correct, from a submission that hides the GPU: torch.cuda.is_available() says False.

It patches torch at import and again in every forward, so that on a grader with
a GPU its GPU tests would be skipped and their points moved to the tests it
passes. Graded by tests/test_gpu.py with the GPU simulated on the trusted side.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from resnet import ResidualBlock

torch.cuda.is_available = lambda: False  # hide the GPU from the grader's GPU tests


class ModernCNN(nn.Module):
    """Stem, seven residual blocks and a pooled classifier.

    Layout:

    - stem: ``Conv2d(3, 64, 3, padding=1)`` **with** its bias -> ``BatchNorm2d(64)`` -> ReLU
    - ``ResidualBlock`` (in, out, stride): (64, 64, 1), (64, 128, 2), (128, 128, 1),
      (128, 256, 2), (256, 256, 1), (256, 512, 2), (512, 512, 1)
    - classifier: ``AdaptiveAvgPool2d(1)`` -> flatten -> ``Dropout(0.5)`` ->
      ``Linear(512, num_classes)``

    It has 11,100,042 parameters for ``num_classes=10`` (the stem's bias counts
    64 of them); the output is logits.

    Shape:
        - Input: ``(N, 3, H, W)``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # TODO: stem conv (bias kept) + BN + ReLU, the seven ResidualBlocks from the docstring, then pool -> flatten -> dropout 0.5 -> Linear
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            ResidualBlock(64, 64),
            ResidualBlock(64, 128, stride=2),
            ResidualBlock(128, 128),
            ResidualBlock(128, 256, stride=2),
            ResidualBlock(256, 256),
            ResidualBlock(256, 512, stride=2),
            ResidualBlock(512, 512),
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
            nn.Dropout(p=0.5),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        torch.cuda.is_available = lambda: False  # and again, in case the grader put it back
        """Images ``(N, 3, H, W)`` -> logits ``(N, num_classes)``."""
        # TODO: features, then classifier
        return self.classifier(self.features(x))
