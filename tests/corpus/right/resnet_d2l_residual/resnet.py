"""ResNet in the style of Dive into Deep Learning: a Residual class with use_1x1conv and a resnet_block helper."""

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        use_1x1conv = stride != 1 or in_channels != out_channels
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
            self.bn3 = nn.BatchNorm2d(out_channels)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.bn3(self.conv3(X))
        Y += X
        return F.relu(Y)


def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(ResidualBlock(input_channels, num_channels, stride=2))
        else:
            blk.append(ResidualBlock(num_channels, num_channels))
    return blk


class ResNet(nn.Module):
    def __init__(self, num_blocks_per_stage=(2, 2, 2, 2), num_classes=10):
        super().__init__()
        b1 = nn.Sequential(nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False),
                           nn.BatchNorm2d(64), nn.ReLU())
        b2 = nn.Sequential(*resnet_block(64, 64, num_blocks_per_stage[0], first_block=True))
        b3 = nn.Sequential(*resnet_block(64, 128, num_blocks_per_stage[1]))
        b4 = nn.Sequential(*resnet_block(128, 256, num_blocks_per_stage[2]))
        b5 = nn.Sequential(*resnet_block(256, 512, num_blocks_per_stage[3]))
        self.net = nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                 nn.Linear(512, num_classes))

    def forward(self, X):
        return self.net(X)


def resnet18(num_classes=10):
    return ResNet([2] * 4, num_classes=num_classes)


class NoSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, X):
        return F.relu(self.conv2(F.relu(self.conv1(X))))


class WithSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.conv2(F.relu(self.conv1(X))))
        return Y + X
