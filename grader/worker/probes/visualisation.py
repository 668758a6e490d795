"""Probes of feature visualisation: the first convolution, its filters as a grid, feature maps and saved images.

In: a builder that returns the visualisation function under test; the probes hand it
small networks of their own. Out: which layer it found, the grid's shape and value
range, the feature maps' shapes, and what the PNG file it wrote holds.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from .core import _modules_of, make_input, probe, to_numpy


class _VisNet(nn.Module):
    """A Linear registered before the convolutions, and the first conv nested two levels down."""

    def __init__(self, in_channels: int = 3, n_filters: int = 5) -> None:
        super().__init__()
        self.head = nn.Linear(6, 2)
        self.body = nn.Sequential(nn.Sequential(nn.Conv2d(in_channels, n_filters, 3, padding=1)), nn.ReLU(),
                                  nn.Conv2d(n_filters, 6, 3, padding=1))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.body(x)), 1))


def _vis_net(seed: int, in_channels: int = 3, n_filters: int = 5, constant_filter: bool = False) -> _VisNet:
    torch.manual_seed(seed)
    net = _VisNet(in_channels, n_filters)
    if constant_filter:
        with torch.no_grad():
            net.body[0][0].weight[0].fill_(0.25)
    return net


@probe
def first_conv_probe(build: Callable[[], Any]) -> dict[str, Any]:
    fn = build()
    net = _vis_net(0)
    convs = [m for m in _modules_of(net) if isinstance(m, nn.Conv2d)]
    got = fn(net)
    index = next((i for i, m in enumerate(convs) if m is got), None)
    try:
        other = fn(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
        no_conv = f"returned {type(other).__name__}"
    except ValueError:
        no_conv = "ValueError"
    except Exception as e:  # noqa: BLE001
        no_conv = f"raised {type(e).__name__}"
    return {"index": index, "type": type(got).__name__, "convs": len(convs), "no_conv": no_conv}


def _grid_info(value: Any) -> dict[str, Any]:
    if not isinstance(value, torch.Tensor):
        return {"type": type(value).__name__}
    t = value.as_subclass(torch.Tensor)
    return {"type": "tensor", "shape": list(t.shape), "requires_grad": bool(t.requires_grad), "device": str(t.device),
            "dtype": str(t.dtype).replace("torch.", ""), "grid": to_numpy(t.detach().float())}


@probe
def filter_grid_probe(build: Callable[[], Any]) -> dict[str, Any]:
    """The grid for RGB filters (padding 1 and 2), grey filters, and a constant filter."""
    fn = build()
    cases = {
        "rgb": (_vis_net(1, 3, 5), {}),
        "rgb_padding2": (_vis_net(1, 3, 5), {"padding": 2}),
        "grey": (_vis_net(2, 2, 4), {}),
        "constant": (_vis_net(3, 3, 6, constant_filter=True), {}),
    }
    out: dict[str, Any] = {}
    for name, (net, kwargs) in cases.items():
        out[name] = _grid_info(fn(net, **kwargs))
    return out


class _Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("forward failed on purpose")


def _feature_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2), nn.ReLU())
    with torch.no_grad():
        net[1].running_mean.copy_(torch.linspace(-0.5, 0.5, 4))
        net[1].running_var.copy_(torch.linspace(0.5, 3.0, 4))
    return net


@probe
def feature_maps_probe(build: Callable[[], Any]) -> dict[str, Any]:
    """Feature maps of a middle layer; the model's mode, BN statistics and hooks afterwards."""
    fn = build()
    net = _feature_net(0)
    net.train()
    stats = [net[1].running_mean.clone(), net[1].running_var.clone()]
    x = make_input([2, 3, 9, 9], seed=4, dtype=torch.float32)
    got = fn(net, net[3], x)
    info = _grid_info(got)
    info["maps"] = info.pop("grid", None)
    info["mode_after_train"] = "train" if net.training else "eval"
    info["stats_changed"] = not (torch.equal(stats[0], net[1].running_mean) and torch.equal(stats[1], net[1].running_var))
    info["hooks_left"] = sum(len(m._forward_hooks) for m in _modules_of(net))
    net.eval()
    second = fn(net, net[1], x)
    info["second_shape"] = list(second.shape) if isinstance(second, torch.Tensor) else None
    info["mode_after_eval"] = "train" if net.training else "eval"
    broken = nn.Sequential(nn.Conv2d(3, 4, 3), _Boom())
    broken.train()
    try:
        fn(broken, broken[0], x)
        info["failing_forward"] = "no error"
    except Exception as e:  # noqa: BLE001
        info["failing_forward"] = type(e).__name__
    info["hooks_left_after_failure"] = sum(len(m._forward_hooks) for m in _modules_of(broken))
    return info


def _png_info(path: str) -> dict[str, Any]:
    """Size, colour type and pixels of an 8-bit, non-interlaced PNG (stdlib only)."""
    if not os.path.exists(path):
        return {"exists": False}
    data = Path(path).read_bytes()
    info: dict[str, Any] = {"exists": True, "bytes": len(data), "png": data[:8] == b"\x89PNG\r\n\x1a\n"}
    if not info["png"]:
        return info
    pos, idat, header = 8, b"", None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        info["png"] = False
        return info
    width, height, depth, colour, _, _, interlace = header
    info.update(width=width, height=height, bit_depth=depth, colour_type=colour)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None or depth != 8 or interlace != 0 or colour == 3:
        return info
    try:
        raw = zlib.decompress(idat)
    except zlib.error:
        return info
    stride = width * channels
    rows = np.zeros((height, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for r in range(height):
        start = r * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw[start + 1 : start + 1 + stride], dtype=np.uint8).astype(np.int64)
        cur = np.zeros(stride, dtype=np.int64)
        for i in range(stride):
            a = cur[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 0:
                v = line[i]
            elif kind == 1:
                v = line[i] + a
            elif kind == 2:
                v = line[i] + b
            elif kind == 3:
                v = line[i] + (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                v = line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)
            cur[i] = v & 0xFF
        rows[r] = cur
        prev = cur
    pixels = rows.reshape(height, width, channels)
    if channels in (2, 4):
        pixels = pixels[..., :-1]
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    info["pixels"] = pixels.astype(np.uint8)
    return info


@probe
def save_image_probe(build: Callable[[], Any], which: str = "filter_grid", max_maps: int | None = None) -> dict[str, Any]:
    """Call a save_* function with a path under a fresh temporary folder and read the PNG back."""
    fn = build()
    folder = tempfile.mkdtemp(prefix="vis-")
    try:
        path = os.path.join(folder, f"{which}.png")
        if which == "filter_grid":
            returned = fn(_vis_net(1, 3, 5), path)
        else:
            net = _feature_net(0)
            x = make_input([2, 3, 9, 9], seed=4, dtype=torch.float32)
            kwargs = {} if max_maps is None else {"max_maps": max_maps}
            returned = fn(net, net[3], x, path, **kwargs)
        info = _png_info(path)
        try:
            info["returned_path"] = (isinstance(returned, (str, os.PathLike))
                                     and os.path.abspath(os.fspath(returned)) == path)
        except TypeError:
            info["returned_path"] = False
        info["returned_type"] = type(returned).__name__
        info["files"] = sorted(os.listdir(folder))[:10]
        return info
    finally:
        shutil.rmtree(folder, ignore_errors=True)
