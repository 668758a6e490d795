"""VGG with functional activations, pooling and dropout, and view to flatten."""

import torch
import torch.nn.functional as F
from torch import nn


class VGGBlock(nn.Module):
    def __init__(self, in_channels, out_channels, num_convs):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, 1, 1) for i in range(num_convs))

    def forward(self, x):
        for conv in self.convs:
            x = F.relu(conv(x), inplace=True)
        return F.max_pool2d(x, 2)


class SimplifiedVGG(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.block1 = VGGBlock(3, 64, 2)
        self.block2 = VGGBlock(64, 128, 2)
        self.block3 = VGGBlock(128, 256, 3)
        self.block4 = VGGBlock(256, 512, 3)
        self.fc1 = nn.Linear(2048, 512)
        self.fc2 = nn.Linear(512, 512)
        self.fc3 = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.block4(self.block3(self.block2(self.block1(x))))
        x = x.view(x.size(0), -1)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        x = F.dropout(F.relu(self.fc2(x)), p=0.5, training=self.training)
        return self.fc3(x)
