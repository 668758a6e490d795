import math

import torch
import torch.nn as nn
import torchvision.utils as vutils


def first_conv(model):
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) == 0:
        raise ValueError("no conv layer in this model")
    return convs[0]


def _normalise_each(t):
    out = torch.empty_like(t)
    for i in range(t.shape[0]):
        lo, hi = t[i].min(), t[i].max()
        if hi > lo:
            out[i] = (t[i] - lo) / (hi - lo)
        else:
            out[i] = 0.0
    return out


def filter_grid(model, padding=1):
    w = first_conv(model).weight.data.clone().float().cpu()
    if w.shape[1] != 3:
        w = w.mean(1, keepdim=True).repeat(1, 3, 1, 1)
    w = _normalise_each(w)
    ncols = int(math.ceil(w.shape[0] ** 0.5))
    return vutils.make_grid(w, nrow=ncols, padding=padding)


def feature_maps(model, layer, x):
    store = {}

    def grab(mod, inp, out):
        store["out"] = out.detach()

    h = layer.register_forward_hook(grab)
    mode = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        h.remove()
        model.train(mode)
    return store["out"][0]


def save_filter_grid(model, path):
    vutils.save_image(filter_grid(model), str(path))
    return path


def save_feature_maps(model, layer, x, path, max_maps=16):
    fmaps = feature_maps(model, layer, x)[:max_maps].float().cpu()
    fmaps = _normalise_each(fmaps).unsqueeze(1)
    grid = vutils.make_grid(fmaps, nrow=int(math.ceil(fmaps.shape[0] ** 0.5)), padding=1)
    vutils.save_image(grid, str(path))
    return path
