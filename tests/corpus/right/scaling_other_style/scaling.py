"""Compound scaling written another way."""

import math

import torch.nn as nn
import torch.nn.functional as F

from resnet import ResidualBlock

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15


def compound_coefficients(phi, alpha=ALPHA, beta=BETA, gamma=GAMMA):
    return tuple(math.pow(base, phi) for base in (alpha, beta, gamma))


def round_channels(channels, width_mult, divisor=8):
    target = channels * width_mult
    value = int(target + divisor / 2) // divisor * divisor
    value = value if value >= divisor else divisor
    return value + divisor if value < 0.9 * target else value


def round_depth(num_blocks, depth_mult):
    return math.ceil(num_blocks * depth_mult)


def round_resolution(size, res_mult):
    return round(size * res_mult)


class ScaledResNet(nn.Module):
    def __init__(self, width_mult=1.0, depth_mult=1.0, num_classes=10):
        super().__init__()
        self.widths = [round_channels(c, width_mult) for c in (64, 128, 256, 512)]
        self.depths = [round_depth(2, depth_mult) for _ in range(4)]
        self.conv1 = nn.Conv2d(3, self.widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.widths[0])
        self.blocks = nn.ModuleList()
        cin = self.widths[0]
        for stage, (width, depth) in enumerate(zip(self.widths, self.depths)):
            for i in range(depth):
                stride = 2 if stage > 0 and i == 0 else 1
                self.blocks.append(ResidualBlock(cin, width, stride))
                cin = width
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for block in self.blocks:
            x = block(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def efficientnet_style(phi, num_classes=10, base_resolution=32):
    d, w, r = compound_coefficients(phi)
    return ScaledResNet(w, d, num_classes), round_resolution(base_resolution, r)
