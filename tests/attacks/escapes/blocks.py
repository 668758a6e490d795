import torch
import torch.nn as nn
import torch.nn.functional as F

NASTY = "\x1b[2J\x1b[31m<script>alert('x')</script>\x1b]0;pwned\x07\r\x00\x08 \ud800 \u202e"


class SkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print(NASTY)
        raise ValueError("<img src=x onerror=alert(1)>" + NASTY)
