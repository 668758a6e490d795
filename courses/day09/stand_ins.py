"""Stand-ins for the Day 9 building blocks.

When a block fails its own tests, the tests of the networks built from it
replace it with the stand-in of the same name, in the student's modules and in
the reference's alike, so that a network is judged on its own wiring only
(``dependencies = "isolate"`` in assignment.toml).

Each stand-in honours its block's constructor and shape contract, and its size
depends on every constructor argument (a network that passes a wrong argument
to its blocks still differs from the specification), but it is deliberately not
the block the lesson asks for: a 1x1 mixing layer where the lesson has 3x3 or
5x5 convolutions, no shortcut, no pooling branch. Nothing here is a solution.
This file is sent to the grading sandbox, so it must stay free of anything the
students should not see.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and ReLU, and no shortcut.

    Shape: ``(N, in_channels, H, W)`` -> ``(N, out_channels, ceil(H / stride), ceil(W / stride))``.
    Two 3x3 convolutions per block, so that stage widths and depths read from the
    layers (the scaling bonus does that) mean the same as for the real block.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.first = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.first_norm = nn.BatchNorm2d(out_channels)
        self.second = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.second_norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.first_norm(self.first(x)))
        return F.relu(self.second_norm(self.second(x)))


class VGGBlock(nn.Module):
    """A 1x1 convolution scaled by one learned factor per requested convolution, then a 2x2 max-pool.

    Shape: ``(N, in_channels, H, W)`` -> ``(N, out_channels, H // 2, W // 2)``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_convs: int) -> None:
        super().__init__()
        self.mix = nn.Conv2d(in_channels, out_channels, 1)
        self.scales = nn.Parameter(torch.ones(num_convs))

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(F.relu(self.mix(x)) * self.scales.mean(), 2)


class InceptionModule(nn.Module):
    """Four 1x1 paths whose widths follow the seven arguments, concatenated on the channels.

    Shape: ``(N, in_channels, H, W)`` -> ``(N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3_reduce: int, ch3x3: int, ch5x5_reduce: int,
                 ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.paths = nn.ModuleList([
            nn.Conv2d(in_channels, ch1x1, 1),
            nn.Sequential(nn.Conv2d(in_channels, ch3x3_reduce, 1), nn.ReLU(), nn.Conv2d(ch3x3_reduce, ch3x3, 1)),
            nn.Sequential(nn.Conv2d(in_channels, ch5x5_reduce, 1), nn.ReLU(), nn.Conv2d(ch5x5_reduce, ch5x5, 1)),
            nn.Conv2d(in_channels, pool_proj, 1),
        ])

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(torch.cat([path(x) for path in self.paths], dim=1))


class DepthwiseSeparableConv(nn.Module):
    """A strided 1x1 convolution with BatchNorm and ReLU.

    Shape: ``(N, in_channels, H, W)`` -> ``(N, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.mix = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.mix(x)))


class ResNet(nn.Module):
    """A narrow network with one 1x1 layer per requested block and a ``num_classes`` head.

    Shape: ``(N, 3, H, W)`` -> ``(N, num_classes)``.
    """

    def __init__(self, num_blocks_per_stage: Sequence[int] = (2, 2, 2, 2), num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 4, 1)]
        for stage, count in enumerate(num_blocks_per_stage):
            for _ in range(int(count)):
                layers.append(nn.Conv2d(layers[-1].out_channels, 4 + stage, 1))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(layers[-1].out_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = F.relu(layer(x))
        return self.head(x.mean(dim=(2, 3)))


class ScaledResNet(nn.Module):
    """Stand-in blocks whose widths and counts follow the two multipliers, and a ``num_classes`` head.

    Widths are ``round(c * width_mult)`` for ``c`` in 64, 128, 256, 512 and each
    stage has ``round(2 * depth_mult)`` blocks (plain rounding, not the
    assignment's rules); every stage halves the image.

    Shape: ``(N, 3, H, W)`` -> ``(N, num_classes)``.
    """

    def __init__(self, width_mult: float = 1.0, depth_mult: float = 1.0, num_classes: int = 10) -> None:
        super().__init__()
        widths = [max(1, round(c * width_mult)) for c in (64, 128, 256, 512)]
        count = max(1, round(2 * depth_mult))
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        previous = widths[0]
        for width in widths:
            blocks.append(ResidualBlock(previous, width, 2))
            blocks += [ResidualBlock(width, width) for _ in range(count - 1)]
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(previous, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))
