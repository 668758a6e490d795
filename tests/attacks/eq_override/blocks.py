"""Objects that claim to equal anything: a Tensor subclass and an int subclass that lie."""
import torch
import torch.nn as nn


class Liar(torch.Tensor):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __bool__(self):
        return True

    __hash__ = torch.Tensor.__hash__

    @property
    def shape(self):
        return torch.Size([1, 3, 7, 7])

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


class SkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()  # no layers at all: 0 parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(1, 1).as_subclass(Liar)  # the wrong shape and values, claiming to be right
