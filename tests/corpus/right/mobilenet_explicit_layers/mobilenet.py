"""MobileNet with explicit layers and F.relu."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class DepthwiseSeparableConv(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.bn_dw = nn.BatchNorm2d(in_channels)
        self.bn_pw = nn.BatchNorm2d(out_channels)
        self.dw = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False)
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        x = F.relu(self.bn_dw(self.dw(x)))
        return F.relu(self.bn_pw(self.pw(x)))


class MobileNetV1(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.b1 = DepthwiseSeparableConv(32, 64)
        self.b2 = DepthwiseSeparableConv(64, 128, 2)
        self.b3 = DepthwiseSeparableConv(128, 128)
        self.b4 = DepthwiseSeparableConv(128, 256, 2)
        self.b5 = DepthwiseSeparableConv(256, 256)
        self.b6 = DepthwiseSeparableConv(256, 512, 2)
        self.head = nn.Linear(512, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        for block in (self.b1, self.b2, self.b3, self.b4, self.b5, self.b6):
            x = block(x)
        x = x.mean(dim=(2, 3))
        return self.head(x)
