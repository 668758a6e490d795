"""Visualisation without make_grid: the tiling is done by hand."""

import math

import torch
import torch.nn as nn
from torchvision.utils import save_image


def first_conv(model):
    convs = [m for m in model.modules() if type(m) is nn.Conv2d or isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("no convolution in this model")
    return convs[0]


def _tile(images, padding):
    n, c, h, w = images.shape
    cols = min(n, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = torch.zeros(c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, top:top + h, left:left + w] = images[i]
    return grid


def _normalise(t):
    out = []
    for item in t:
        lo, hi = item.min(), item.max()
        out.append((item - lo) / (hi - lo) if hi > lo else torch.zeros_like(item))
    return torch.stack(out)


def filter_grid(model, padding=1):
    with torch.no_grad():
        w = first_conv(model).weight.detach().to("cpu", torch.float32).clone()
        if w.shape[1] != 3:
            w = w.mean(1, keepdim=True).repeat(1, 3, 1, 1)
        return _tile(_normalise(w), padding)


def feature_maps(model, layer, x):
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.setdefault("out", o.detach()))
    mode = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
        model.train(mode)
    return store["out"][0]


def save_filter_grid(model, path):
    save_image(filter_grid(model), str(path))
    return path


def save_feature_maps(model, layer, x, path, max_maps=16):
    maps = feature_maps(model, layer, x)[:max_maps].float().cpu()
    maps = _normalise(maps).unsqueeze(1)
    grid = _tile(maps, 1)
    save_image(grid.expand(3, -1, -1) if grid.shape[0] == 1 else grid, str(path))
    return path
