import torch
from torch import nn
from torch.nn import functional as F


class InceptionModule(nn.Module):
    # c1--c4 are the output channels of the four paths; in_channels is inferred by the lazy layers
    def __init__(self, in_channels, c1, c2_reduce, c2, c3_reduce, c3, c4):
        super().__init__()
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2_reduce, kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2, kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3_reduce, kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3, kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


class SimplifiedInception(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            InceptionModule(64, 32, 48, 64, 8, 16, 16),
            InceptionModule(128, 64, 96, 128, 16, 32, 32),
            nn.MaxPool2d(kernel_size=2, stride=2),
            InceptionModule(256, 128, 128, 192, 32, 96, 64),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.4), nn.LazyLinear(num_classes))

    def forward(self, x):
        return self.net(x)
