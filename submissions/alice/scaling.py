import math

import torch.nn as nn
import torch.nn.functional as F

from resnet import ResidualBlock

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15


def compound_coefficients(phi, alpha=ALPHA, beta=BETA, gamma=GAMMA):
    return (alpha ** phi, beta ** phi, gamma ** phi)


def round_channels(channels, width_mult, divisor=8):
    target = channels * width_mult
    c = int(target + divisor / 2) // divisor * divisor
    c = max(c, divisor)
    if c < 0.9 * target:
        c = c + divisor
    return int(c)


def round_depth(num_blocks, depth_mult):
    return int(math.ceil(num_blocks * depth_mult))


def round_resolution(size, res_mult):
    return int(round(size * res_mult))


class ScaledResNet(nn.Module):
    def __init__(self, width_mult=1.0, depth_mult=1.0, num_classes=10):
        super().__init__()
        widths = [round_channels(w, width_mult) for w in (64, 128, 256, 512)]
        n = round_depth(2, depth_mult)
        self.conv = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        self.layers = nn.ModuleList()
        prev = widths[0]
        for stage, w in enumerate(widths):
            for i in range(n):
                self.layers.append(ResidualBlock(prev, w, 2 if (i == 0 and stage > 0) else 1))
                prev = w
        self.fc = nn.Linear(prev, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        for layer in self.layers:
            x = layer(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def efficientnet_style(phi, num_classes=10, base_resolution=32):
    d, w, r = compound_coefficients(phi)
    return ScaledResNet(w, d, num_classes), round_resolution(base_resolution, r)
