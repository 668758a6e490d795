"""round_depth and round_resolution return numpy arrays: the student's failure, never an internal error."""
from __future__ import annotations

import math

import numpy as np

from torch import Tensor, nn

from resnet import ResidualBlock

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
"""EfficientNet's depth, width and resolution bases (found by grid search for phi = 1)."""

BASE_WIDTHS = (64, 128, 256, 512)
"""Channels of the stem and of the four stages of the unscaled ResNet."""

BASE_BLOCKS = (2, 2, 2, 2)
"""Residual blocks per stage of the unscaled ResNet (ResNet-18)."""


def compound_coefficients(
    phi: float, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA
) -> tuple[float, float, float]:
    """The three multipliers for compound coefficient ``phi``.

    Returns:
        ``(depth_mult, width_mult, res_mult) = (alpha ** phi, beta ** phi, gamma ** phi)``;
        ``phi = 0`` gives ``(1.0, 1.0, 1.0)``.
    """
    return alpha**phi, beta**phi, gamma**phi


def round_channels(channels: int, width_mult: float, divisor: int = 8) -> int:
    """Scale a channel count and round it the way EfficientNet does.

    Rules, applied to ``scaled = channels * width_mult``:

    1. round to the nearest multiple of ``divisor`` (halves round up):
       ``int(scaled + divisor / 2) // divisor * divisor``;
    2. never go below ``divisor``;
    3. if that lost more than 10% (result ``< 0.9 * scaled``), add one more ``divisor``.

    Examples: ``round_channels(64, 1.1) == 72`` (70.4 -> 72),
    ``round_channels(512, 1.1) == 560`` (563.2 -> 560), ``round_channels(64, 1.0) == 64``.
    """
    scaled = channels * width_mult
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_depth(num_blocks: int, depth_mult: float) -> int:
    """Scale a block count and round it up: ``math.ceil(num_blocks * depth_mult)``.

    Rounding up means a stage never loses blocks: ``round_depth(2, 1.2) == 3``.
    """
    return np.array([math.ceil(num_blocks * depth_mult)] * 2)  # an array, not an int


def round_resolution(size: int, res_mult: float) -> int:
    """Scale an image side and round to the nearest integer: ``int(round(size * res_mult))``.

    Example: ``round_resolution(32, 1.15) == 37`` (36.8 -> 37).
    """
    return np.array([round(size * res_mult), 0])


class ScaledResNet(nn.Module):
    """The lesson's ResNet with width and depth multipliers.

    Widths: ``round_channels(c, width_mult)`` for the base widths
    ``64, 128, 256, 512`` (the stem uses the first stage's width). Depths:
    ``round_depth(2, depth_mult)`` blocks in each of the four stages.
    Everything else is as in ``ResNet``: stem
    ``Conv3x3(3 -> w0, bias=False) -> BN -> ReLU``; stages of ``ResidualBlock``
    whose first block has stride 1, 2, 2, 2; global average pooling; ``Linear``.

    ``ScaledResNet(1.0, 1.0)`` is exactly ``ResNet([2, 2, 2, 2])`` (11,173,962 parameters).

    Attributes:
        widths: the four rounded stage widths.
        depths: the four rounded block counts.

    Shape:
        - Input: ``(N, 3, H, W)``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, width_mult: float = 1.0, depth_mult: float = 1.0, num_classes: int = 10) -> None:
        super().__init__()
        self.widths = [round_channels(c, width_mult) for c in BASE_WIDTHS]
        self.depths = [round_depth(n, depth_mult) for n in BASE_BLOCKS]
        self.stem = nn.Sequential(
            nn.Conv2d(3, self.widths[0], kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(self.widths[0]),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        in_channels = self.widths[0]
        for index, (width, depth) in enumerate(zip(self.widths, self.depths)):
            stride = 1 if index == 0 else 2
            blocks = [ResidualBlock(in_channels, width, stride)]
            blocks += [ResidualBlock(width, width, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = width
        self.stages = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, 3, H, W)`` -> logits ``(N, num_classes)``."""
        x = self.stages(self.stem(x))
        return self.fc(self.avgpool(x).flatten(1))


def efficientnet_style(phi: float, num_classes: int = 10, base_resolution: int = 32) -> tuple[nn.Module, int]:
    """Compound-scale the ResNet by ``phi``.

    Computes ``(d, w, r) = compound_coefficients(phi)`` and returns
    ``(ScaledResNet(width_mult=w, depth_mult=d, num_classes=num_classes),
    round_resolution(base_resolution, r))``: the scaled model and the input
    image side it should be trained at. ``phi = 0`` gives the plain ResNet-18 at 32.
    """
    depth_mult, width_mult, res_mult = compound_coefficients(phi)
    model = ScaledResNet(width_mult=width_mult, depth_mult=depth_mult, num_classes=num_classes)
    return model, round_resolution(base_resolution, res_mult)
