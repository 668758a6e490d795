import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

CHUNK = "x" * (1 << 20)
for _ in range(50):  # 50 MB at import
    print(CHUNK)


class SkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(100):  # 100 MB per forward
            print(CHUNK)
        for _ in range(10):
            os.write(1, CHUNK.encode())  # straight to the descriptors
            os.write(2, CHUNK.encode())
            sys.stderr.write(CHUNK)
        return F.relu(self.conv(x)) + x
