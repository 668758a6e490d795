"""ModernCNN whose classifier drops whole channels of the pooled (N, 512, 1, 1) map: there Dropout2d equals Dropout."""

import torch
from torch import nn

from resnet import ResidualBlock


class ModernCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem_conv = nn.Conv2d(3, 64, 3, padding=1, bias=True)
        self.stem_bn = nn.BatchNorm2d(64)
        self.blocks = nn.ModuleList()
        for cin, cout, stride in [(64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
                                  (256, 512, 2), (512, 512, 1)]:
            self.blocks.append(ResidualBlock(cin, cout, stride))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout2d(0.5)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        for block in self.blocks:
            x = block(x)
        x = self.drop(self.pool(x))
        return self.fc(torch.flatten(x, 1))
