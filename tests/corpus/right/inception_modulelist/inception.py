"""Inception with the branches in an nn.ModuleList and a fully sequential network."""

import torch
from torch import nn


def conv_relu(cin, cout, k):
    return [nn.Conv2d(cin, cout, kernel_size=k, padding=k // 2), nn.ReLU()]


class InceptionModule(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj):
        super().__init__()
        self.branches = nn.ModuleList([
            nn.Sequential(*conv_relu(in_channels, ch1x1, 1)),
            nn.Sequential(*conv_relu(in_channels, ch3x3_reduce, 1), *conv_relu(ch3x3_reduce, ch3x3, 3)),
            nn.Sequential(*conv_relu(in_channels, ch5x5_reduce, 1), *conv_relu(ch5x5_reduce, ch5x5, 5)),
            nn.Sequential(nn.MaxPool2d(3, 1, 1), *conv_relu(in_channels, pool_proj, 1)),
        ])

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], 1)


class SimplifiedInception(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            InceptionModule(64, 32, 48, 64, 8, 16, 16),
            InceptionModule(128, 64, 96, 128, 16, 32, 32),
            nn.MaxPool2d(2),
            InceptionModule(256, 128, 128, 192, 32, 96, 64),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(480, num_classes),
        )

    def forward(self, x):
        return self.net(x)
