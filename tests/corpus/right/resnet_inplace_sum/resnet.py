"""ResNet with in-place operations where they are safe: on the block's own intermediate tensors, never on x."""

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.skip = nn.Sequential()
        if stride > 1 or in_channels != out_channels:
            self.skip.add_module("conv", nn.Conv2d(in_channels, out_channels, 1, stride, bias=False))
            self.skip.add_module("bn", nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.main(x)
        out += self.skip(x)
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, num_blocks_per_stage=(2, 2, 2, 2), num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        widths, strides = [64, 128, 256, 512], [1, 2, 2, 2]
        layers, channels = [], 64
        for n, width, stride in zip(num_blocks_per_stage, widths, strides):
            for s in [stride] + [1] * (n - 1):
                layers.append(ResidualBlock(channels, width, s))
                channels = width
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.pool(self.body(self.stem(x)))
        return self.fc(torch.flatten(x, start_dim=1))


def resnet18(num_classes=10):
    return ResNet(num_blocks_per_stage=[2, 2, 2, 2], num_classes=num_classes)


class NoSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True),
                               nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.f(x)


class WithSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True),
                               nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.f(x) + x  # not +=: the last in-place ReLU's output is needed by autograd
