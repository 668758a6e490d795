"""An honest submission with a missing skip connection that reports what it can see of earlier students."""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


def look():
    seen = []
    for folder in ("/tmp", "/dev/shm", "/home/student", "."):
        try:
            seen += [f"{folder}/{name}" for name in os.listdir(folder) if name != "submission"]
        except OSError:
            pass
    seen += [f"pid {p}" for p in os.listdir("/proc") if p.isdigit() and int(p) > 2 and int(p) != os.getpid()
             and int(p) != os.getppid()]
    if "PLANTED" in os.environ:
        seen.append("env PLANTED")
    return seen


class SkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("SEEN:", sorted(n for n in look() if "blocks.py" not in n and "extra.py" not in n and "__pycache__" not in n))
        return F.relu(self.conv(x))  # no skip connection: an honest partial score
