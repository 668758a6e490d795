"""MobileNet: convolutions cheap enough for a phone.

A standard 3x3 convolution mixes space and channels in one step and costs
``in * out * 9`` weights. A depthwise separable convolution splits that in two:
a depthwise 3x3 convolution filters each channel on its own
(``groups=in_channels``, ``in * 9`` weights), then a pointwise 1x1 convolution
mixes the channels (``in * out`` weights).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DepthwiseSeparableConv(nn.Module):
    """Depthwise 3x3 convolution then pointwise 1x1 convolution, each with BN and ReLU.

    - depthwise: ``Conv2d(in_channels, in_channels, 3, stride, padding=1,
      groups=in_channels, bias=False)`` -> ``BatchNorm2d(in_channels)`` -> ReLU
    - pointwise: ``Conv2d(in_channels, out_channels, 1, bias=False)`` ->
      ``BatchNorm2d(out_channels)`` -> ReLU

    The stride belongs to the depthwise convolution; the pointwise one always
    has stride 1.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        stride: stride of the depthwise convolution (2 halves the image).

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, ceil(H / stride), ceil(W / stride))``

    Example:
        ``DepthwiseSeparableConv(32, 64)`` has 2,528 parameters
        (32*9 + 2*32 + 32*64 + 2*64), against 18,496 for a plain
        ``Conv2d(32, 64, 3, padding=1)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Sequential(
            nn.Conv2d(
                in_channels, in_channels, kernel_size=3, stride=stride, padding=1, groups=in_channels, bias=False
            ),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
        )
        self.pointwise = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W / stride)``."""
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    """A six-block MobileNetV1 for 32x32 RGB images.

    Layout:

    - stem: ``Conv3x3(3 -> 32, stride 1, padding 1, bias=False)`` -> BN -> ReLU
    - ``DepthwiseSeparableConv`` blocks (in -> out, stride):
      32 -> 64 (1), 64 -> 128 (2), 128 -> 128 (1), 128 -> 256 (2),
      256 -> 256 (1), 256 -> 512 (2)
    - global average pool, flatten, ``Linear(512, num_classes)``

    It has 274,250 parameters for ``num_classes=10``; the output is logits.

    Shape:
        - Input: ``(N, 3, H, W)``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(
            DepthwiseSeparableConv(32, 64, stride=1),
            DepthwiseSeparableConv(64, 128, stride=2),
            DepthwiseSeparableConv(128, 128, stride=1),
            DepthwiseSeparableConv(128, 256, stride=2),
            DepthwiseSeparableConv(256, 256, stride=1),
            DepthwiseSeparableConv(256, 512, stride=2),
        )
        self.avgpool = nn.AvgPool2d(4)  # the 4x4 map of a 32x32 image
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, 3, H, W)`` -> logits ``(N, num_classes)``."""
        x = self.blocks(self.stem(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)
