"""Probes of a module's behaviour: what its forward does with an input.

In: a builder and an input shape (inputs made from a fixed seed, weights from the
keyed values where outputs are compared). Out: output shapes and values, in eval
and train mode and after a few updates; whether gradients reach every parameter,
the input is left alone, samples stay independent, and the forward runs on the
meta device; outputs with the residual branch zeroed; the gradient through a
stack; how dropout behaves; a function target's return value.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from .core import (_modules_of, _named_parameters, _tensor_numel, _to, _train, FastMetaBatchNorm, ProbeFailure,
                   as_module, build_without_random_init, built_for_forward, call, keyed_fill, make_input,
                   output_tensor, plain, probe, set_dropout, to_numpy)


# The dtype of the probes that read a property of the forward (which parameters get a gradient, whether samples
# mix, where dropout runs) rather than compare its output with the reference's: float32 convolutions run about
# twice as fast as float64 ones on a CPU, and none of these answers depends on the rounding.
PROPERTY_DTYPE = torch.float32


@probe
def forward_shape(build: Callable[[], Any], input_shape: list[int], mode: str = "eval") -> dict[str, Any]:
    """The output's shape and dtype after one no-grad forward of a float32 input.

    Only the shape and dtype are read, so the forward runs on the meta device (no
    weights initialised, no arithmetic); a model that cannot run there runs on the
    CPU, so an error is the one the CPU gives. So does a model with a tensor that
    is not float32 (a default dtype changed, a ``.double()``): the meta device
    lets some mixed-dtype operations through that the CPU refuses.
    """
    try:
        return _forward_shape(build, input_shape, mode, on_meta=True)
    except Exception:  # noqa: BLE001 - run again on the CPU
        return _forward_shape(build, input_shape, mode, on_meta=False)


def _forward_shape(build: Callable[[], Any], input_shape: list[int], mode: str, on_meta: bool) -> dict[str, Any]:
    model, x = built_for_forward(build, input_shape, on_meta, meta_dtype=torch.float32)
    if on_meta:
        tensors = [t for _, t in _named_parameters(model)] + [b for m in _modules_of(model) for b in m._buffers.values()
                                                               if b is not None]
        if torch.get_default_dtype() != torch.float32 or any(t.is_floating_point() and t.dtype != torch.float32
                                                             for t in tensors):
            raise ProbeFailure("not all float32: measured on the CPU")
    _train(model, mode == "train")
    with torch.no_grad(), (FastMetaBatchNorm() if on_meta else contextlib.nullcontext()):
        out = output_tensor(call(model, x))
    return {"shape": list(out.shape), "dtype": str(out.dtype).replace("torch.", "")}


@probe
def keyed_forward(build: Callable[[], Any], input_shape: list[int], mode: str = "eval",
                  seed: int = 0, dropout_off: bool = False) -> dict[str, Any]:
    """Output under keyed float64 weights: equal to the reference's when the layers are the same."""
    model = as_module(build_without_random_init(build))
    keyed_fill(model)
    if dropout_off:
        set_dropout(model, 0.0)
    _train(model, mode == "train")
    torch.manual_seed(seed)
    with torch.no_grad():
        out = output_tensor(call(model, make_input(input_shape, seed)))
    return {"output": to_numpy(out)}


@probe
def keyed_forward_after_updates(build: Callable[[], Any], input_shape: list[int], steps: int = 3,
                                seed: int = 0) -> dict[str, Any]:
    """Eval output under keyed weights after ``steps`` train-mode forwards on other inputs.

    The train-mode forwards update BatchNorm's running statistics, so the output
    shows what they became: momentum, track_running_stats and whether eval mode
    uses them at all.
    """
    model = as_module(build_without_random_init(build))
    keyed_fill(model)
    set_dropout(model, 0.0)
    _train(model, True)
    with torch.no_grad():
        for step in range(steps):
            call(model, make_input(input_shape, seed + 100 + step))
        _train(model, False)
        out = output_tensor(call(model, make_input(input_shape, seed)))
    return {"output": to_numpy(out)}


@probe
def gradient_flow(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Train-mode backward from a non-leaf input: which parameters get no gradient, and whether it works."""
    model = as_module(build_without_random_init(build))
    keyed_fill(model, PROPERTY_DTYPE)
    set_dropout(model, 0.0)
    _train(model, True)
    x = make_input(input_shape).to(PROPERTY_DTYPE).requires_grad_(True)
    out = output_tensor(call(model, x * 1.0))
    out.square().mean().backward()
    without = []
    for name, p in _named_parameters(model):
        if p.grad is None or not bool(torch.any(p.grad != 0)):
            without.append(f"{name} {tuple(p.shape)}")
    return {"without_grad": without, "input_grad": float(x.grad.abs().sum()) if x.grad is not None else 0.0}


@probe
def input_mutation(build: Callable[[], Any], input_shape: list[int], mode: str = "eval") -> dict[str, Any]:
    model = as_module(build_without_random_init(build))
    keyed_fill(model, PROPERTY_DTYPE)
    _train(model, mode == "train")
    x = make_input(input_shape).to(PROPERTY_DTYPE)
    before = x.clone()
    with torch.no_grad():
        call(model, x)
    return {"mutated": not torch.equal(x, before)}


@probe
def meta_forward(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Forward with every tensor on the meta device: catches tensors created on the CPU and plain tensor attributes."""
    model = as_module(build_without_random_init(build))
    _to(model, "meta")
    _train(model, False)
    with torch.no_grad(), FastMetaBatchNorm():
        out = output_tensor(call(model, torch.empty(*input_shape, device="meta")))
    return {"shape": list(out.shape), "device": str(out.device)}


@torch.no_grad()
def _zero_convs(model: nn.Module, min_kernel: int, kind: type) -> None:
    """Zero the weights and biases of every ``kind`` of convolution at least ``min_kernel`` wide."""
    for module in _modules_of(model):
        if isinstance(module, kind) and max(module.kernel_size) >= min_kernel:
            module.weight.zero_()
            if module.bias is not None:
                module.bias.zero_()


@probe
def skip_zeroed(build: Callable[[], Any], input_shape: list[int], min_kernel: int = 2) -> dict[str, Any]:
    """Zero every conv whose kernel is at least ``min_kernel`` wide (the residual branch) and run in eval.

    A block with an identity skip then returns relu(x) (or x without a final ReLU);
    the gradient reaching the input is the shortcut's alone.
    """
    model = as_module(build_without_random_init(build))
    keyed_fill(model)
    _zero_convs(model, min_kernel, nn.Conv2d)
    _train(model, False)
    x = make_input(input_shape).requires_grad_(True)
    out = output_tensor(call(model, x * 1.0))
    out.sum().backward()
    return {"input": to_numpy(x), "output": to_numpy(out),
            "input_grad_abs": float(x.grad.abs().sum()) if x.grad is not None else 0.0}


@probe
def residual_zeroed(build: Callable[[], Any], input_shape: list[int], min_kernel: int = 2) -> dict[str, Any]:
    """Like ``skip_zeroed``, and every BatchNorm maps 0 to 0 (running mean and shift zeroed), in eval.

    The residual branch then outputs exactly zero, so an identity-shortcut block
    returns ``relu(x)`` exactly and a projection block ``relu(scale * conv1x1(x))``.
    ``input_grad`` is the gradient of ``out.sum()``: it reaches the input only
    through the shortcut.
    """
    model = as_module(build_without_random_init(build))
    keyed_fill(model)
    _zero_convs(model, min_kernel, nn.modules.conv._ConvNd)
    with torch.no_grad():
        for module in _modules_of(model):
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                if module.running_mean is not None:
                    module.running_mean.zero_()
                if module.bias is not None:
                    module.bias.zero_()
    _train(model, False)
    x = make_input(input_shape).requires_grad_(True)
    out = output_tensor(call(model, x * 1.0))
    out.sum().backward()
    return {"input": to_numpy(x), "output": to_numpy(out),
            "input_grad": to_numpy(x.grad) if x.grad is not None else np.zeros(input_shape)}


@probe
def batch_independence(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """In eval, the first sample's output must not depend on the other samples."""
    model = as_module(build_without_random_init(build))
    keyed_fill(model, PROPERTY_DTYPE)
    _train(model, False)
    x = make_input(input_shape).to(PROPERTY_DTYPE).requires_grad_(True)
    out = output_tensor(call(model, x))
    out[0].sum().backward()
    leak = float(x.grad[1:].abs().max()) if x.grad is not None and x.shape[0] > 1 else 0.0
    return {"leak": leak}


@probe
def stochasticity(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Two forwards in train mode should differ when there is dropout; two in eval must agree."""
    model = as_module(build_without_random_init(build))
    keyed_fill(model, PROPERTY_DTYPE)
    x = make_input(input_shape).to(PROPERTY_DTYPE)
    with torch.no_grad():
        _train(model, True)
        torch.manual_seed(1)
        t1 = output_tensor(call(model, x))
        torch.manual_seed(2)
        t2 = output_tensor(call(model, x))
        _train(model, False)
        e1 = output_tensor(call(model, x))
        e2 = output_tensor(call(model, x))
    return {"train_differs": not torch.equal(t1, t2), "eval_equal": torch.equal(e1, e2),
            "sums": [float(t.abs().sum()) for t in (t1, t2, e1, e2)]}


@probe
def logits_check(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Rows that sum to one with no negatives mean a softmax at the end instead of logits."""
    model = as_module(build_without_random_init(build))
    keyed_fill(model, PROPERTY_DTYPE)
    _train(model, False)
    with torch.no_grad():
        out = output_tensor(call(model, make_input(input_shape).to(PROPERTY_DTYPE)))
    sums = out.sum(dim=1)
    return {"looks_like_probabilities": bool(torch.all(out >= 0) and torch.allclose(sums, torch.ones_like(sums), atol=1e-6))}


@probe
def stack_gradient(build: Callable[[], Any], depth: int, input_shape: list[int], gain: float = 0.41) -> dict[str, Any]:
    """Chain ``depth`` fresh blocks and see how much gradient reaches each one.

    Keyed weights are scaled by ``gain`` (0.41 ~ PyTorch's default init relative
    to He init), the loss is the mean square of the last output. Without skip
    connections the gradient of the first blocks vanishes; with them it does not.
    """
    blocks = [as_module(build_without_random_init(build)) for _ in range(depth)]
    with torch.no_grad():
        for block in blocks:
            keyed_fill(block)
            _train(block, False)
            for module in _modules_of(block):
                if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                    module.weight.mul_(gain)
    x = make_input(input_shape).requires_grad_(True)
    h = x * 1.0
    for block in blocks:
        h = output_tensor(call(block, h))
    h.square().mean().backward()
    norms = []
    for block in blocks:
        total = 0.0
        for _, p in _named_parameters(block):
            if p.grad is not None:
                total += float(p.grad.square().sum())
        norms.append(math.sqrt(total))
    return {"block_grad_norms": np.array(norms, dtype=np.float64),
            "input_grad_norm": float(x.grad.norm()) if x.grad is not None else 0.0,
            "output_rms": float(h.detach().square().mean().sqrt())}


_RANDOM_OPS = ("bernoulli", "native_dropout", "rand", "uniform", "normal", "multinomial", "randint", "randperm")


@probe
def dropout_profile(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Where dropout runs: the random ops of a train-mode and an eval-mode forward.

    Each dropout shows as one random op; ``p`` is its drop probability when the op
    says it (``nn.Dropout`` and ``F.dropout`` both do), ``per_sample`` the number
    of values it acts on per sample. Also: do two train forwards differ, two eval
    forwards agree.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    model = as_module(build_without_random_init(build))
    keyed_fill(model, PROPERTY_DTYPE)
    x = make_input(input_shape).to(PROPERTY_DTYPE)
    batch = input_shape[0]

    class Recorder(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[dict[str, Any]] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            kwargs = kwargs or {}
            name = func.overloadpacket.__name__
            if any(name.startswith(op) for op in _RANDOM_OPS) and args and isinstance(args[0], torch.Tensor):
                p = None
                if name.startswith("bernoulli") and len(args) > 1 and isinstance(args[1], (int, float)):
                    p = 1.0 - float(args[1])
                elif name.startswith("bernoulli") and isinstance(kwargs.get("p"), (int, float)):
                    p = 1.0 - float(kwargs["p"])
                elif str(func) == "aten.bernoulli_.float":
                    p = 0.5  # the schema's default keep probability is left out of the call
                elif name == "native_dropout" and len(args) > 1 and isinstance(args[1], (int, float)):
                    p = float(args[1])
                numel = int(_tensor_numel(args[0]))
                self.calls.append({"op": name, "p": p, "per_sample": numel // batch if batch else numel})
            return func(*args, **kwargs)

    with torch.no_grad():
        _train(model, True)
        torch.manual_seed(1)
        with Recorder() as train_rec:
            t1 = output_tensor(call(model, x))
        torch.manual_seed(2)
        t2 = output_tensor(call(model, x))
        _train(model, False)
        with Recorder() as eval_rec:
            e1 = output_tensor(call(model, x))
        e2 = output_tensor(call(model, x))
    return {"train": train_rec.calls, "eval": eval_rec.calls, "train_differs": not torch.equal(t1, t2),
            "eval_equal": torch.equal(e1, e2)}


@probe
def call_function(build: Callable[[], Any]) -> dict[str, Any]:
    """Call a function target (``build`` does the call) and return its value as plain data."""
    return {"value": plain(build())}
