import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        # shortcut first: None means identity
        self.shortcut = None
        self.shortcut_bn = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(out_channels)
        self.c1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.n1 = nn.BatchNorm2d(out_channels)
        self.c2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.n2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        if self.shortcut is None:
            sc = x
        else:
            sc = self.shortcut_bn(self.shortcut(x))
        h = F.relu(self.n1(self.c1(x)))
        h = self.n2(self.c2(h))
        return F.relu(h + sc)


class ResNet(nn.Module):
    def __init__(self, num_blocks_per_stage=[2, 2, 2, 2], num_classes=10):
        super().__init__()
        self.stem_conv = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(64)
        self.blocks = nn.ModuleList()
        channels = 64
        for width, n, stride in zip([64, 128, 256, 512], num_blocks_per_stage, [1, 2, 2, 2]):
            for i in range(n):
                self.blocks.append(ResidualBlock(channels, width, stride if i == 0 else 1))
                channels = width
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        for block in self.blocks:
            x = block(x)
        x = F.adaptive_avg_pool2d(x, 1)
        x = x.view(x.size(0), -1)
        return self.linear(x)


def resnet18(num_classes=10):
    return ResNet(num_blocks_per_stage=[2, 2, 2, 2], num_classes=num_classes)


class NoSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1)
        self.b = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.relu(self.b(F.relu(self.a(x))))


class WithSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1)
        self.b = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        y = F.relu(self.a(x))
        y = F.relu(self.b(y))
        return y + x
