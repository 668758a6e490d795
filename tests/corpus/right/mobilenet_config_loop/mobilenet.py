"""MobileNet from a configuration table, built in a loop."""

import torch
from torch import nn
import torch.nn.functional as F

CONFIG = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]


class DepthwiseSeparableConv(nn.Sequential):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size=(3, 3), stride=(stride, stride), padding=(1, 1),
                      groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, kernel_size=(1, 1), bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


class MobileNetV1(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        layers = [nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
        channels = 32
        for out, stride in CONFIG:
            layers.append(DepthwiseSeparableConv(channels, out, stride))
            channels = out
        self.features = nn.ModuleList(layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        for layer in self.features:
            x = layer(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.fc(torch.flatten(x, start_dim=1))
