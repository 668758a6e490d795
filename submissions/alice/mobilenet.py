import torch
import torch.nn as nn
import torch.nn.functional as F


class DepthwiseSeparableConv(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.pw = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pw_bn = nn.BatchNorm2d(out_channels)
        self.dw = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=stride, padding=1,
                            groups=in_channels, bias=False)
        self.dw_bn = nn.BatchNorm2d(in_channels)

    def forward(self, x):
        x = F.relu(self.dw_bn(self.dw(x)))
        return F.relu(self.pw_bn(self.pw(x)))


CONFIG = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)]


class MobileNetV1(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.first = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.first_bn = nn.BatchNorm2d(32)
        self.body = nn.ModuleList([DepthwiseSeparableConv(i, o, s) for i, o, s in CONFIG])
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        x = F.relu(self.first_bn(self.first(x)))
        for layer in self.body:
            x = layer(x)
        x = F.adaptive_avg_pool2d(x, (1, 1)).view(x.shape[0], -1)
        return self.classifier(x)
