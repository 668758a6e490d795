"""Inception: look at several scales at once.

An object can fill a few pixels or the whole image, so an Inception module runs
1x1, 3x3 and 5x5 convolutions and a pooled path side by side and stacks their
outputs along the channel axis. Cheap 1x1 convolutions first shrink the channel
count ("reduce") so the larger kernels stay affordable.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class InceptionModule(nn.Module):
    """Four parallel branches whose outputs are concatenated along the channels.

    Branches, in this order (every convolution has a bias and is followed by a ReLU):

    1. ``Conv1x1(in_channels -> ch1x1)``
    2. ``Conv1x1(in_channels -> ch3x3_reduce)`` -> ``Conv3x3(-> ch3x3, padding=1)``
    3. ``Conv1x1(in_channels -> ch5x5_reduce)`` -> ``Conv5x5(-> ch5x5, padding=2)``
    4. ``MaxPool2d(3, stride=1, padding=1)`` -> ``Conv1x1(in_channels -> pool_proj)``

    Every branch keeps the spatial size (that is what the paddings are for), so
    the results can be joined with ``torch.cat(..., dim=1)`` in the order 1, 2, 3, 4.

    Args:
        in_channels: channels of the input.
        ch1x1: output channels of the 1x1 branch.
        ch3x3_reduce: channels of the 1x1 reduction before the 3x3 convolution.
        ch3x3: output channels of the 3x3 branch.
        ch5x5_reduce: channels of the 1x1 reduction before the 5x5 convolution.
        ch5x5: output channels of the 5x5 branch.
        pool_proj: output channels of the 1x1 projection after the max-pool.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``

    Example:
        ``InceptionModule(64, 32, 48, 64, 8, 16, 16)`` outputs 128 channels and
        has 37,688 parameters.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.branch1x1 = nn.Sequential(
            nn.Conv2d(in_channels, ch1x1, kernel_size=1),
            nn.ReLU(inplace=True),
        )
        self.branch3x3 = nn.Sequential(
            nn.Conv2d(in_channels, ch3x3_reduce, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch3x3_reduce, ch3x3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.branch5x5 = nn.Sequential(
            nn.Conv2d(in_channels, ch5x5_reduce, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch5x5_reduce, ch5x5, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(in_channels, pool_proj, kernel_size=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Run the four branches on the same ``x`` and concatenate them on ``dim=1``.

        ``(N, in_channels, H, W)`` -> ``(N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.
        """
        branches = [self.branch1x1(x), self.branch3x3(x), self.branch5x5(x), self.branch_pool(x)]
        return torch.cat(branches, dim=1)


class SimplifiedInception(nn.Module):
    """A small Inception network for 32x32 RGB images.

    Layout (channels x size for a 32x32 input):

    - stem: ``Conv3x3(3 -> 64, padding 1)`` -> ReLU -> ``MaxPool2d(2, 2)`` (64 x 16 x 16)
    - ``InceptionModule(64, 32, 48, 64, 8, 16, 16)`` (128 x 16 x 16)
    - ``InceptionModule(128, 64, 96, 128, 16, 32, 32)`` (256 x 16 x 16)
    - ``MaxPool2d(2, 2)`` (256 x 8 x 8)
    - ``InceptionModule(256, 128, 128, 192, 32, 96, 64)`` (480 x 8 x 8)
    - global average pool, flatten, ``Dropout(0.4)``, ``Linear(480, num_classes)``

    It has 583,410 parameters for ``num_classes=10``; the output is logits.

    Shape:
        - Input: ``(N, 3, H, W)``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.inception1 = InceptionModule(64, 32, 48, 64, 8, 16, 16)
        self.inception2 = InceptionModule(128, 64, 96, 128, 16, 32, 32)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.inception3 = InceptionModule(256, 128, 128, 192, 32, 96, 64)
        self.avgpool = nn.AvgPool2d(8)  # the 8x8 map of a 32x32 image
        self.dropout = nn.Dropout(p=0.4)
        self.fc = nn.Linear(480, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, 3, H, W)`` -> logits ``(N, num_classes)``."""
        x = self.stem(x)
        x = self.inception2(self.inception1(x))
        x = self.inception3(self.pool(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))
