import torch
from torch import nn
from torch.nn import functional as F


class ResidualBlock(nn.Module):
    """Lazy layers infer their input channels; in_channels only decides whether to project."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(out_channels, kernel_size=3, padding=1, stride=stride, bias=False)
        self.conv2 = nn.LazyConv2d(out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        if stride != 1 or in_channels != out_channels:
            self.conv3 = nn.LazyConv2d(out_channels, kernel_size=1, stride=stride, bias=False)
            self.bn3 = nn.LazyBatchNorm2d()
        else:
            self.conv3 = None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.bn3(self.conv3(X))
        Y += X
        return F.relu(Y)


def stage(in_channels, out_channels, num_blocks, stride):
    blocks = [ResidualBlock(in_channels, out_channels, stride)]
    for _ in range(num_blocks - 1):
        blocks.append(ResidualBlock(out_channels, out_channels))
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    def __init__(self, num_blocks_per_stage=(2, 2, 2, 2), num_classes=10):
        super().__init__()
        b1 = nn.Sequential(nn.LazyConv2d(64, kernel_size=3, stride=1, padding=1, bias=False),
                           nn.LazyBatchNorm2d(), nn.ReLU())
        stages = []
        channels = 64
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), num_blocks_per_stage)):
            stages.append(stage(channels, width, n, 1 if i == 0 else 2))
            channels = width
        self.net = nn.Sequential(b1, *stages, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                 nn.LazyLinear(num_classes))

    def forward(self, X):
        return self.net(X)


def resnet18(num_classes=10):
    return ResNet((2, 2, 2, 2), num_classes)


class NoSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.LazyConv2d(channels, kernel_size=3, padding=1)
        self.conv2 = nn.LazyConv2d(channels, kernel_size=3, padding=1)

    def forward(self, X):
        return F.relu(self.conv2(F.relu(self.conv1(X))))


class WithSkipBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.LazyConv2d(channels, kernel_size=3, padding=1)
        self.conv2 = nn.LazyConv2d(channels, kernel_size=3, padding=1)

    def forward(self, X):
        return F.relu(self.conv2(F.relu(self.conv1(X)))) + X
