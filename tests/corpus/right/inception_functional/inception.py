"""Inception with functional ReLU, pooling and dropout, and the mean over H and W to pool globally."""

import torch
import torch.nn.functional as F
from torch import nn


class InceptionModule(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj):
        super().__init__()
        self.b1 = nn.Conv2d(in_channels, ch1x1, 1)
        self.b2_reduce = nn.Conv2d(in_channels, ch3x3_reduce, 1)
        self.b2 = nn.Conv2d(ch3x3_reduce, ch3x3, 3, padding="same")
        self.b3_reduce = nn.Conv2d(in_channels, ch5x5_reduce, 1)
        self.b3 = nn.Conv2d(ch5x5_reduce, ch5x5, 5, padding="same")
        self.b4 = nn.Conv2d(in_channels, pool_proj, 1)

    def forward(self, x):
        y1 = F.relu(self.b1(x))
        y2 = F.relu(self.b2(F.relu(self.b2_reduce(x))))
        y3 = F.relu(self.b3(F.relu(self.b3_reduce(x))))
        y4 = F.relu(self.b4(F.max_pool2d(x, 3, stride=1, padding=1)))
        return torch.cat((y1, y2, y3, y4), dim=-3)


class SimplifiedInception(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, padding=1)
        self.mixed = nn.ModuleList([
            InceptionModule(64, 32, 48, 64, 8, 16, 16),
            InceptionModule(128, 64, 96, 128, 16, 32, 32),
            InceptionModule(256, 128, 128, 192, 32, 96, 64),
        ])
        self.fc = nn.Linear(480, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 2)
        x = self.mixed[1](self.mixed[0](x))
        x = self.mixed[2](F.max_pool2d(x, kernel_size=2, stride=2))
        x = x.mean(dim=(-2, -1))
        x = F.dropout(x, p=0.4, training=self.training)
        return self.fc(x)
