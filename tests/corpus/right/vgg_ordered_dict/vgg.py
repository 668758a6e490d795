from collections import OrderedDict

import torch
from torch import nn


class VGGBlock(nn.Module):
    def __init__(self, in_channels, out_channels, num_convs):
        super().__init__()
        named = OrderedDict()
        c = in_channels
        for i in range(num_convs):
            named[f"conv{i + 1}"] = nn.Conv2d(c, out_channels, kernel_size=(3, 3), stride=1, padding=(1, 1), bias=True)
            named[f"relu{i + 1}"] = nn.ReLU()
            c = out_channels
        named["pool"] = nn.MaxPool2d(2)
        self.body = nn.Sequential(named)

    def forward(self, x):
        return self.body(x)


class SimplifiedVGG(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        spec = [(3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3)]
        self.blocks = nn.ModuleList([VGGBlock(i, o, n) for i, o, n in spec])
        self.head = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(512 * 2 * 2, 512)), ("act1", nn.ReLU()), ("drop1", nn.Dropout(0.5)),
            ("fc2", nn.Linear(512, 512)), ("act2", nn.ReLU()), ("drop2", nn.Dropout(0.5)),
            ("out", nn.Linear(512, num_classes)),
        ]))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(torch.flatten(x, 1))
