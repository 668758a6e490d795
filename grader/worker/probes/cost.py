"""Probes of cost: FLOPs, inference time, and parameters and FLOPs of a model built on the meta device.

In: a builder and an input shape (for ``meta_cost`` the builder may return
``(model, resolution)``). Out: FLOP counts, median milliseconds per forward, and the
stage widths and depths read from the layers.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from .core import (_modules_of, _named_parameters, _tensor_numel, _to, _train, FastMetaBatchNorm, ProbeFailure,
                   as_module, build_without_random_init, call, count_by_type, make_input, output_tensor, probe)


# Batch norm's overloads as they reach a dispatch mode. FlopCounterMode decomposes every op it has no formula
# for, looking for matmuls and convolutions inside; batch norm's decomposition is pointwise ops and reductions
# only (no FLOPs counted either way) and costs 2-3 ms a call in Python, most of a ResNet's count on meta.
_BATCH_NORM_OPS = ("native_batch_norm.default", "_native_batch_norm_legit.default", "_native_batch_norm_legit.no_stats",
                   "_native_batch_norm_legit_no_training.default", "_native_batch_norm_legit_functional.default")


def _no_flops(*args: Any, **kwargs: Any) -> int:
    return 0


def flop_counter() -> Any:
    """A ``FlopCounterMode`` that counts what it always counts, without decomposing batch norm."""
    from torch.utils.flop_counter import FlopCounterMode

    skip = {}
    for name in _BATCH_NORM_OPS:
        packet, overload = name.split(".")
        op = getattr(getattr(torch.ops.aten, packet, None), overload, None)
        if op is not None:
            skip[op] = _no_flops
    return FlopCounterMode(display=False, custom_mapping=skip)


@probe
def flops(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    model = as_module(build_without_random_init(build))
    _train(model, False)
    with torch.no_grad(), flop_counter() as counter:
        call(model, make_input(input_shape, dtype=torch.float32))
    return {"flops": int(counter.get_total_flops())}


@probe
def inference_time(build: Callable[[], Any], input_shape: list[int], repeats: int = 5) -> dict[str, Any]:
    model = as_module(build_without_random_init(build))
    _train(model, False)
    x = make_input(input_shape, dtype=torch.float32)
    times = []
    with torch.no_grad():
        call(model, x)
        for _ in range(repeats):
            start = time.perf_counter()
            call(model, x)
            times.append((time.perf_counter() - start) * 1000)
    return {"ms": float(np.median(times))}


@probe
def meta_cost(build: Callable[[], Any], input_shape: list[int] | None = None) -> dict[str, Any]:
    """Build on the meta device (no memory, no init cost); count parameters and FLOPs of one forward.

    ``build()`` may return a model or ``(model, resolution)``; without ``input_shape``
    the input is ``(1, 3, resolution, resolution)``.
    """
    with torch.device("meta"):
        obj = build()
    resolution = None
    if isinstance(obj, (tuple, list)):
        if len(obj) != 2:
            raise ProbeFailure(f"expected (model, resolution), got a {type(obj).__name__} of length {len(obj)}")
        obj, resolution = obj
    model = as_module(obj)
    out: dict[str, Any] = {"params": sum(int(_tensor_numel(p)) for _, p in _named_parameters(model)),
                           "by_type": count_by_type(model)}
    if resolution is not None:
        out["resolution_type"] = type(resolution).__name__
        out["resolution"] = int(resolution) if isinstance(resolution, (int, float)) and not isinstance(resolution, bool) else None
    convs = [m for m in _modules_of(model) if isinstance(m, nn.Conv2d) and max(m.kernel_size) == 3]
    out["conv3x3"] = len(convs)
    # Stage sizes read from the layers, whatever the attributes are called: the stage widths are the
    # distinct output widths of the 3x3 convolutions; each residual block holds two of them and the
    # stem one more of the first width.
    counts: dict[int, int] = {}
    for conv in convs:
        counts[conv.out_channels] = counts.get(conv.out_channels, 0) + 1
    out["widths"] = sorted(counts)
    out["depths"] = [(counts[w] - (1 if i == 0 else 0)) // 2 for i, w in enumerate(out["widths"])]
    shape = input_shape or ([1, 3, out["resolution"], out["resolution"]] if out.get("resolution") else None)
    if shape is not None:
        _to(model, "meta")
        _train(model, False)
        with torch.no_grad(), flop_counter() as counter, FastMetaBatchNorm():
            y = output_tensor(call(model, torch.empty(*shape, device="meta")))
        out["flops"] = int(counter.get_total_flops())
        out["out_shape"] = list(y.shape)
    return out
