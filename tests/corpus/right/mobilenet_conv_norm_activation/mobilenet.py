"""MobileNetV1 from torchvision's Conv2dNormActivation, pooled with F.adaptive_avg_pool2d."""

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation


class DepthwiseSeparableConv(nn.Sequential):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(
            Conv2dNormActivation(in_channels, in_channels, kernel_size=3, stride=stride, groups=in_channels),
            Conv2dNormActivation(in_channels, out_channels, kernel_size=1),
        )


class MobileNetV1(nn.Module):
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]

    def __init__(self, num_classes=10):
        super().__init__()
        layers = [Conv2dNormActivation(3, 32, kernel_size=3)]
        c = 32
        for out, stride in self.cfg:
            layers.append(DepthwiseSeparableConv(c, out, stride))
            c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(x.flatten(1))
