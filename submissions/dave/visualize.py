"""Practice task: look at what a network has learned.

Two views: the filters of the first convolution (they see RGB pixels directly,
so they can be drawn as small colour images) and the feature maps a chosen
layer produces for an input image.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.utils import make_grid, save_image


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` in ``model.modules()`` (registration order).

    Raises:
        ValueError: when the model has no ``nn.Conv2d``.
    """
    raise NotImplementedError("TODO: walk model.modules() and return the first nn.Conv2d")


def filter_grid(model: nn.Module, padding: int = 1) -> Tensor:
    """The first convolution's filters tiled into one RGB image.

    The weight of ``first_conv(model)`` has shape ``(n, c, k, k)``. Filters with
    3 input channels are shown as colour images; for any other ``c`` the input
    channels are averaged and the grey image repeated over 3 channels. Each
    filter is min-max normalised on its own to ``[0, 1]`` (a constant filter
    becomes 0), then the ``n`` filters are tiled with
    ``torchvision.utils.make_grid`` in ``ceil(sqrt(n))`` columns with ``padding``
    black pixels between and around them.

    Returns:
        A tensor ``(3, H, W)`` with values in ``[0, 1]``, detached and on the CPU.
        For ``n > 1`` filters of size ``k``: ``H = rows * (k + padding) + padding``
        and ``W = cols * (k + padding) + padding``, where ``cols = ceil(sqrt(n))``
        and ``rows = ceil(n / cols)``.
    """
    raise NotImplementedError("TODO: take first_conv(model).weight, make it 3-channel, min-max normalise each filter separately, make_grid with nrow=ceil(sqrt(n))")


def feature_maps(model: nn.Module, layer: nn.Module, x: Tensor) -> Tensor:
    """The output of ``layer`` (a submodule of ``model``) for the first image of ``x``.

    A forward hook registered on ``layer`` records its output while ``model(x)``
    runs in evaluation mode under ``torch.no_grad()``; the hook is removed
    afterwards (also when the forward fails) and the model's previous
    train/eval mode is restored.

    Args:
        model: the whole network; ``x`` goes through ``model``, not ``layer``.
        layer: the submodule to watch; its output must be a ``(N, C, H, W)`` tensor.
        x: a batch ``(N, 3, H_in, W_in)``.

    Returns:
        The detached feature maps ``(C, H, W)`` of the first image of the batch.
    """
    raise NotImplementedError("TODO: register_forward_hook on layer that saves its output, run model(x) in eval mode under no_grad, remove the hook in a finally block")


def save_filter_grid(model: nn.Module, path: str | Path) -> Path:
    """Write ``filter_grid(model)`` to ``path`` as a PNG and return the path."""
    raise NotImplementedError("TODO: torchvision.utils.save_image of filter_grid(model)")


def save_feature_maps(model: nn.Module, layer: nn.Module, x: Tensor, path: str | Path, max_maps: int = 16) -> Path:
    """Write the first ``max_maps`` feature maps of ``layer`` as one grey-scale PNG grid.

    Takes ``feature_maps(model, layer, x)[:max_maps]``, min-max normalises each
    map on its own to ``[0, 1]``, and tiles them with ``make_grid`` in
    ``ceil(sqrt(m))`` columns (``m`` maps, padding 1). For ``m > 1`` maps of size
    ``H x W`` the image is ``cols * (W + 1) + 1`` pixels wide and
    ``rows * (H + 1) + 1`` high. Returns ``path``.
    """
    raise NotImplementedError("TODO: feature_maps(...)[:max_maps], normalise each map to [0, 1], make_grid of (m, 1, H, W) with nrow=ceil(sqrt(m)), save_image")
