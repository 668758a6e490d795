import torch
from torch import nn
import torch.nn.functional as F


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.main(x) + skip)


class ResNet(nn.Module):
    def __init__(self, num_blocks_per_stage=(2, 2, 2, 2), num_classes=10):
        super().__init__()
        self.stem_conv = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(64)
        widths = [64, 128, 256, 512]
        self.stages = nn.ModuleList()
        channels = 64
        for i, (width, count) in enumerate(zip(widths, num_blocks_per_stage)):
            blocks = []
            for j in range(count):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(ResidualBlock(channels, width, stride))
                channels = width
            self.stages.append(nn.Sequential(*blocks))
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        for stage in self.stages:
            x = stage(x)
        x = x.mean(dim=(2, 3))
        return self.head(x.flatten(1))


def resnet18(num_classes=10):
    model = ResNet([2] * 4, num_classes)
    return model


class NoSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=1) for _ in range(2)])

    def forward(self, x):
        for conv in self.convs:
            x = F.relu(conv(x))
        return x


class WithSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=1) for _ in range(2)])

    def forward(self, x):
        out = x
        for conv in self.convs:
            out = F.relu(conv(out))
        return x + out
