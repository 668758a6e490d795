import torch
import torch.nn as nn
import torch.nn.functional as F


class InceptionModule(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj):
        super().__init__()
        self.pool_proj = nn.Conv2d(in_channels, pool_proj, 1)
        self.b1 = nn.Conv2d(in_channels, ch1x1, 1)
        self.b2_reduce = nn.Conv2d(in_channels, ch3x3_reduce, 1)
        self.b2 = nn.Conv2d(ch3x3_reduce, ch3x3, 3, padding=1)
        self.b3_reduce = nn.Conv2d(in_channels, ch5x5_reduce, 1)
        self.b3 = nn.Conv2d(ch5x5_reduce, ch5x5, 5, padding=2)

    def forward(self, x):
        out1 = F.relu(self.b1(x))
        out2 = F.relu(self.b2(F.relu(self.b2_reduce(x))))
        out3 = F.relu(self.b3(F.relu(self.b3_reduce(x))))
        out4 = F.relu(self.pool_proj(F.max_pool2d(x, 3, stride=1, padding=1)))
        return torch.cat((out1, out2, out3, out4), 1)


class SimplifiedInception(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.inc_a = InceptionModule(64, 32, 48, 64, 8, 16, 16)
        self.inc_b = InceptionModule(128, 64, 96, 128, 16, 32, 32)
        self.inc_c = InceptionModule(256, 128, 128, 192, 32, 96, 64)
        self.head = nn.Linear(480, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = self.inc_b(self.inc_a(x))
        x = F.max_pool2d(x, 2)
        x = self.inc_c(x)
        x = x.mean(dim=(2, 3))
        x = F.dropout(x, 0.4, self.training)
        return self.head(x)
