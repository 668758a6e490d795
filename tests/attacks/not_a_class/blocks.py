import torch.nn as nn


def SkipBlock(channels: int) -> nn.Module:  # a function, where the skeleton has a class
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
