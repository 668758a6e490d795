"""Writes forged replies onto the request socket, and files into the grader's output folder."""
import os
import stat
import struct

import torch
import torch.nn as nn

try:
    from grader_worker import protocol
except Exception:  # noqa: BLE001
    protocol = None

forged = {"ok": True, "result": {"total": 148, "trainable": 148, "by_type": {"Conv2d": 148}, "buffers": 0},
          "stdout": "", "stdout_truncated": False}
for fd in range(64):
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            continue
        for guess in range(1, 6):  # the ids a counter would have used
            os.write(fd, protocol.encode({**forged, "id": guess}))
        os.write(fd, struct.pack(">I", 20) + b'{"body": {"id": NaN}')  # not strict JSON
        os.write(fd, struct.pack(">I", 0xFFFFFFF0))  # an oversize header
    except Exception:  # noqa: BLE001
        pass
for path in ("@@OUT@@/results.json", "@@OUT@@/grading.json", "@@MARKER@@"):
    try:
        with open(path, "w") as f:
            f.write('{"score": 10, "max_score": 10}')
    except OSError:
        pass


class SkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
