"""ResNet: skip connections that make very deep networks trainable.

A residual block learns a correction ``F(x)`` and adds it to its input:
``out = relu(F(x) + shortcut(x))``. Gradients flow through the addition
unchanged, and a block can fall back to the identity by driving ``F`` to zero,
so stacking more blocks never has to make the network worse.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """The basic two-convolution residual block (ResNet-18/34 style).

    Main path: ``Conv3x3(stride) -> BN -> ReLU -> Conv3x3 -> BN``; both
    convolutions have ``padding=1`` and ``bias=False`` (the BatchNorm that follows
    has its own shift, so a conv bias would be redundant). The first convolution
    carries the stride, so a block with ``stride=2`` halves the image.

    Shortcut: the identity when the shapes already match (``stride == 1`` and
    ``in_channels == out_channels``); otherwise a projection
    ``Conv1x1(stride, bias=False) -> BN`` that maps the input to the output shape.

    The two paths are added, and one final ReLU is applied *after* the addition.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        stride: stride of the first 3x3 convolution and of the projection.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, ceil(H / stride), ceil(W / stride))``

    Example:
        ``ResidualBlock(64, 64)`` has 73,984 parameters (no projection);
        ``ResidualBlock(64, 128, stride=2)`` has 230,144 (with projection).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        raise NotImplementedError("TODO: conv3x3(stride)-BN-ReLU-conv3x3-BN main path (bias=False); a 1x1 conv + BN shortcut only when stride != 1 or the channels change")

    def forward(self, x: Tensor) -> Tensor:
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

        ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W / stride)``.
        Do not modify ``x`` in place: the shortcut still needs it.
        """
        raise NotImplementedError("TODO: compute the main path, add the shortcut of the ORIGINAL input, and apply the last ReLU after the addition")


class ResNet(nn.Module):
    """A ResNet for 32x32 images built from four stages of ``ResidualBlock``.

    Layout:

    - stem: ``Conv3x3(3 -> 64, stride 1, padding 1, bias=False) -> BN -> ReLU``
      (no 7x7 conv and no max-pool: CIFAR images are small);
    - four stages with 64, 128, 256 and 512 channels and
      ``num_blocks_per_stage[i]`` blocks each; the first block of stages 2-4 has
      ``stride=2`` (it halves the image and projects the shortcut), all other
      blocks have ``stride=1``;
    - head: global average pooling (``AdaptiveAvgPool2d(1)``), flatten,
      ``Linear(512, num_classes)``; the output is logits.

    With ``[2, 2, 2, 2]`` this is ResNet-18 (11,173,962 parameters). The global
    pooling makes it accept other image sizes than 32x32 too.

    Args:
        num_blocks_per_stage: four block counts, one per stage.
        num_classes: size of the output.

    Shape:
        - Input: ``(N, 3, H, W)``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, num_blocks_per_stage: Sequence[int] = (2, 2, 2, 2), num_classes: int = 10) -> None:
        super().__init__()
        if len(num_blocks_per_stage) != 4 or any(int(n) < 1 for n in num_blocks_per_stage):
            raise ValueError(f"num_blocks_per_stage needs four counts >= 1, got {list(num_blocks_per_stage)}")
        raise NotImplementedError("TODO: stem conv-BN-ReLU (3 -> 64), four stages (64, 128, 256, 512 channels; strides 1, 2, 2, 2), global average pool and a Linear head")

    @staticmethod
    def _make_stage(in_channels: int, out_channels: int, num_blocks: int, stride: int) -> nn.Sequential:
        """One stage: ``num_blocks`` residual blocks in an ``nn.Sequential``.

        Only the first block changes the shape (``in_channels -> out_channels``
        with ``stride``); the others keep ``out_channels`` with stride 1.
        """
        raise NotImplementedError("TODO: first block ResidualBlock(in_channels, out_channels, stride), then num_blocks - 1 blocks of out_channels with stride 1")

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, 3, H, W)`` -> logits ``(N, num_classes)``."""
        raise NotImplementedError("TODO: stem, the four stages, global average pool, flatten (keep the batch dimension), fc")


def resnet18(num_classes: int = 10) -> ResNet:
    """ResNet-18 for 32x32 images: a ``ResNet`` with two blocks in each of the four stages."""
    raise NotImplementedError("TODO: ResNet-18 means two residual blocks per stage")


class NoSkipBlock(nn.Module):
    """Two 3x3 convolutions (with bias, ``padding=1``), each followed by a ReLU; no skip.

    The plain counterpart of ``WithSkipBlock``, for comparing how gradients
    flow through deep stacks with and without skip connections.

    Shape:
        - Input: ``(N, channels, H, W)``
        - Output: ``(N, channels, H, W)``
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        raise NotImplementedError("TODO: two Conv2d(channels, channels, 3, padding=1) layers")

    def forward(self, x: Tensor) -> Tensor:
        """``relu(conv2(relu(conv1(x))))``, same shape as ``x``."""
        raise NotImplementedError("TODO: conv1 -> ReLU -> conv2 -> ReLU, nothing added back")


class WithSkipBlock(nn.Module):
    """Two 3x3 convolutions with ReLUs, plus the input added back at the end.

    ``WithSkipBlock(16)`` has 4,640 parameters, exactly like ``NoSkipBlock(16)``:
    the skip connection itself is free.

    Shape:
        - Input: ``(N, channels, H, W)``
        - Output: ``(N, channels, H, W)``
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        raise NotImplementedError("TODO: the same two convolutions as NoSkipBlock")

    def forward(self, x: Tensor) -> Tensor:
        """``relu(conv2(relu(conv1(x)))) + x``, same shape as ``x``."""
        raise NotImplementedError("TODO: the NoSkipBlock computation, then add the unchanged input")
