"""VGG in the style of Dive into Deep Learning: a helper function builds each block as an nn.Sequential."""

import torch
from torch import nn


def vgg_block(num_convs, in_channels, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGGBlock(nn.Module):
    def __init__(self, in_channels, out_channels, num_convs):
        super().__init__()
        self.block = vgg_block(num_convs, in_channels, out_channels)

    def forward(self, x):
        return self.block(x)


def vgg(conv_arch, num_classes):
    conv_blks = []
    in_channels = 3
    for num_convs, out_channels in conv_arch:
        conv_blks.append(VGGBlock(in_channels, out_channels, num_convs))
        in_channels = out_channels
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.Linear(out_channels * 2 * 2, 512), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(512, num_classes))


class SimplifiedVGG(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = vgg(((2, 64), (2, 128), (3, 256), (3, 512)), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
