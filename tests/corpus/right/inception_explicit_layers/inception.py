"""Inception, written with explicit layers and F.relu."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class InceptionModule(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        # the pool projection is registered first, the 1x1 branch last
        self.proj = nn.Conv2d(in_channels, pool_proj, 1)
        self.reduce5 = nn.Conv2d(in_channels, ch5x5red, 1)
        self.conv5 = nn.Conv2d(ch5x5red, ch5x5, 5, padding=2)
        self.reduce3 = nn.Conv2d(in_channels, ch3x3red, 1)
        self.conv3 = nn.Conv2d(ch3x3red, ch3x3, 3, padding=1)
        self.conv1 = nn.Conv2d(in_channels, ch1x1, 1)

    def forward(self, x):
        pooled = F.relu(self.proj(F.max_pool2d(x, 3, stride=1, padding=1)))
        b5 = F.relu(self.conv5(F.relu(self.reduce5(x))))
        b3 = F.relu(self.conv3(F.relu(self.reduce3(x))))
        b1 = F.relu(self.conv1(x))
        return torch.cat([t for t in (b1, b3, b5, pooled)], dim=1)


class SimplifiedInception(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.a = InceptionModule(64, 32, 48, 64, 8, 16, 16)
        self.b = InceptionModule(128, 64, 96, 128, 16, 32, 32)
        self.c = InceptionModule(256, 128, 128, 192, 32, 96, 64)
        self.classifier = nn.Linear(480, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = self.b(self.a(x))
        x = self.c(F.max_pool2d(x, kernel_size=2, stride=2))
        x = F.adaptive_avg_pool2d(x, 1).view(x.size(0), -1)
        x = F.dropout(x, p=0.4, training=self.training)
        return self.classifier(x)
