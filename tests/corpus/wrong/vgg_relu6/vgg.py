"""VGG: depth built from small 3x3 convolutions.

Two stacked 3x3 convolutions cover the same 5x5 window as one 5x5 convolution,
three cover 7x7, yet they use fewer weights and put a ReLU between every pair.
A VGG network is a stack of such blocks, each ending in a 2x2 max-pool that
halves the image while the channel count doubles.
"""

from __future__ import annotations

from torch import Tensor, nn


class VGGBlock(nn.Module):
    """``num_convs`` 3x3 convolutions, each followed by a ReLU, then a 2x2 max-pool.

    Every convolution has ``padding=1`` (and a bias), so it keeps the spatial
    size; only the final ``MaxPool2d(kernel_size=2, stride=2)`` halves it. The
    first convolution maps ``in_channels`` to ``out_channels``; the following
    ones map ``out_channels`` to ``out_channels``.

    Args:
        in_channels: channels of the input.
        out_channels: channels produced by every convolution of the block.
        num_convs: how many conv + ReLU pairs come before the pool (at least 1).

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, H // 2, W // 2)``

    Example:
        ``VGGBlock(3, 64, 2)`` has 38,720 parameters: (3*9*64 + 64) + (64*9*64 + 64).
    """

    def __init__(self, in_channels: int, out_channels: int, num_convs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_convs):
            layers.append(nn.Conv2d(channels, out_channels, kernel_size=3, padding=1))
            layers.append(nn.ReLU6(inplace=True))
            channels = out_channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the convolutions and the pool: ``(N, C_in, H, W)`` -> ``(N, C_out, H // 2, W // 2)``."""
        return self.layers(x)


class SimplifiedVGG(nn.Module):
    """A four-block VGG for 32x32 RGB images (CIFAR-10 sized).

    Feature extractor, each block halving the image:

    ======================  ==========  =============
    block                   num_convs   output
    ======================  ==========  =============
    ``VGGBlock(3, 64)``     2           64 x 16 x 16
    ``VGGBlock(64, 128)``   2           128 x 8 x 8
    ``VGGBlock(128, 256)``  3           256 x 4 x 4
    ``VGGBlock(256, 512)``  3           512 x 2 x 2
    ======================  ==========  =============

    Classifier on the flattened 512 * 2 * 2 = 2048 features:
    ``Linear(2048, 512)`` -> ReLU -> ``Dropout(0.5)`` -> ``Linear(512, 512)`` ->
    ReLU -> ``Dropout(0.5)`` -> ``Linear(512, num_classes)``. The output is raw
    logits (no softmax): ``nn.CrossEntropyLoss`` applies log-softmax itself.

    Because the classifier expects exactly 2x2 feature maps, the input must be
    32x32. The model has 8,952,138 parameters for ``num_classes=10``.

    Shape:
        - Input: ``(N, 3, 32, 32)``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            VGGBlock(3, 64, num_convs=2),
            VGGBlock(64, 128, num_convs=2),
            VGGBlock(128, 256, num_convs=3),
            VGGBlock(256, 512, num_convs=3),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(512 * 2 * 2, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, 3, 32, 32)`` -> logits ``(N, num_classes)``."""
        return self.classifier(self.features(x))
