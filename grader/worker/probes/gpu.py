"""Probes on a GPU: a module moved to CUDA and trained there. Where the sandbox has no GPU they say so.

In: a builder and an input shape. Out: the devices of the parameters and outputs,
the difference from the CPU's output, and the losses of overfitting one batch on
the device.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .core import (_to, _train, as_module, call, kaiming_init, keyed_fill, make_input, output_tensor, probe,
                   set_dropout, to_numpy)


def _cuda_ready() -> tuple[bool, str]:
    try:
        if not torch.cuda.is_available():
            return False, "this grading sandbox has no GPU"
    except Exception as e:  # noqa: BLE001
        return False, f"CUDA could not start: {type(e).__name__}"
    return True, ""


@probe
def cuda_forward(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Keyed float64 forward on the GPU (eval), then a train-mode forward and backward there."""
    if not torch.cuda.is_available():
        return {"available": False}
    model = as_module(build())
    keyed_fill(model)
    _to(model, "cuda")
    _train(model, False)
    x = make_input(input_shape).to("cuda")
    with torch.no_grad():
        out = output_tensor(call(model, x))
    device = str(out.device)
    _train(model, True)
    set_dropout(model, 0.0)
    out_train = output_tensor(call(model, x.clone().requires_grad_(True) * 1.0))
    out_train.square().mean().backward()
    torch.cuda.synchronize()
    return {"available": True, "device": device, "output": to_numpy(out),
            "name": torch.cuda.get_device_name(0)}


@probe
def cuda_move(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Move the model to the GPU with .to("cuda") and compare its eval output with the CPU's."""
    ok, why = _cuda_ready()
    if not ok:
        return {"cuda": False, "reason": why}
    torch.manual_seed(0)
    model = as_module(build())
    _train(model, False)
    x = make_input(input_shape, dtype=torch.float32)
    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # full float32 on both sides
    try:
        with torch.no_grad():
            cpu_out = output_tensor(call(model, x))
            model = model.to("cuda")
            devices = sorted({str(t.device) for t in list(model.parameters()) + list(model.buffers())})
            gpu_out = output_tensor(call(model, x.to("cuda")))
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    return {"cuda": True, "devices": devices, "out_device": str(gpu_out.device),
            "max_diff": float((gpu_out.float().cpu() - cpu_out.float()).abs().max()),
            "scale": float(cpu_out.abs().max())}


@probe
def device_overfit(build: Callable[[], Any], input_shape: list[int], steps: int = 20, lr: float = 1e-3,
                   device: str = "cuda", kaiming: bool = False, target_loss: float = 0.1,
                   num_classes: int = 10, seed: int = 0) -> dict[str, Any]:
    """Overfit one batch with Adam on ``device`` (the full-size check for a GPU)."""
    if device == "cuda":
        ok, why = _cuda_ready()
        if not ok:
            return {"cuda": False, "reason": why}
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(seed)
    model = as_module(build())
    if kaiming:
        kaiming_init(model, seed)
    set_dropout(model, 0.0)
    model = model.to(device)
    _train(model, True)
    x = make_input(input_shape, seed=seed, dtype=torch.float32).to(device)
    y = (torch.arange(input_shape[0]) % num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(output_tensor(call(model, x)), y)
        loss.backward()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]) or losses[-1] < target_loss:
            break
        optimizer.step()
    return {"cuda": True, "losses": np.array(losses, dtype=np.float64), "seconds": time.perf_counter() - start}
