"""ResNet from torchvision building blocks: Conv2dNormActivation for every conv-BN(-ReLU), mean over H and W to pool."""

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.body = nn.Sequential(
            Conv2dNormActivation(in_channels, out_channels, kernel_size=3, stride=stride),
            Conv2dNormActivation(out_channels, out_channels, kernel_size=3, activation_layer=None),
        )
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = Conv2dNormActivation(in_channels, out_channels, kernel_size=1, stride=stride,
                                                   activation_layer=None)
        self.act = nn.ReLU()

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(self.body(x) + identity)


class ResNet(nn.Module):
    def __init__(self, num_blocks_per_stage=(2, 2, 2, 2), num_classes=10):
        super().__init__()
        self.stem = Conv2dNormActivation(3, 64, kernel_size=3)
        stages = []
        in_channels = 64
        for i, (n, width) in enumerate(zip(num_blocks_per_stage, (64, 128, 256, 512))):
            blocks = []
            for j in range(n):
                blocks.append(ResidualBlock(in_channels, width, 2 if (i > 0 and j == 0) else 1))
                in_channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


def resnet18(num_classes=10):
    return ResNet((2, 2, 2, 2), num_classes)


class NoSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())

    def forward(self, x):
        return self.layers(x)


class WithSkipBlock(NoSkipBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + x
