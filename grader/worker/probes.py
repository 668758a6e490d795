"""Probes: measurements of a module that both sides run with the same code.

The trusted side runs a probe on the reference in its own process; the worker
runs the same probe on the student's module in the sandbox and sends the result
back as plain data. Comparing the two is the suite's job, not the probe's.

A probe is ``fn(build, **params) -> dict`` where ``build()`` returns a fresh
module (or, for function targets, the function itself). Results hold only
numbers, strings, lists, dicts and numpy arrays.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# An optimizer's first use imports torch._dynamo (about 1 s). Importing it with
# this module lets the zygote pay once instead of every forked worker.
import torch._dynamo  # noqa: E402,F401

# Captured before any student module is imported, so that monkeypatching the
# classes later does not change how we count or walk modules.
_named_modules = nn.Module.named_modules
_named_parameters = nn.Module.named_parameters
_modules_of = nn.Module.modules
_train = nn.Module.train
_to = nn.Module.to
_module_call = nn.Module.__call__
_tensor_numel = torch.Tensor.numel
_zeros_like = torch.zeros_like

PROBES: dict[str, Callable[..., dict[str, Any]]] = {}


def probe(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    PROBES[fn.__name__] = fn
    return fn


class ProbeFailure(Exception):
    """The module under test misbehaved in a way the probe can describe to the student."""


# --------------------------------------------------------------------------- helpers

def family(module: nn.Module) -> str:
    """The layer family used for keyed weights: what a layer is, never what it is called."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(module, nn.Linear):
        return "linear"
    return type(module).__name__


def _seed_for(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & (2**63 - 1)


def keyed_values(fam: str, role: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Deterministic values that depend only on (layer family, tensor role, shape)."""
    gen = torch.Generator().manual_seed(_seed_for(f"{fam}|{role}|{tuple(shape)}"))
    n = math.prod(shape)
    if role == "running_var":
        return torch.rand(n, generator=gen, dtype=torch.float64).reshape(shape) + 0.5
    if role == "running_mean":
        return 0.1 * torch.randn(n, generator=gen, dtype=torch.float64).reshape(shape)
    if role == "weight" and fam == "bn":
        return 0.5 + torch.rand(n, generator=gen, dtype=torch.float64).reshape(shape)
    if role == "weight" and len(shape) > 1:
        fan_in = math.prod(shape[1:])
        return torch.randn(n, generator=gen, dtype=torch.float64).reshape(shape) * math.sqrt(2.0 / fan_in)
    return 0.1 * torch.randn(n, generator=gen, dtype=torch.float64).reshape(shape)


# Keyed values already generated in this process, reused by keyed_fill (networks
# share many shapes and the suites fill the same network several times).
_KEYED_CACHE: dict[tuple[str, str, tuple[int, ...]], torch.Tensor] = {}
_KEYED_CACHE_LIMIT = 24_000_000  # elements (about 190 MB of float64)


def _cached_keyed_values(fam: str, role: str, shape: tuple[int, ...]) -> torch.Tensor:
    key = (fam, role, shape)
    values = _KEYED_CACHE.get(key)
    if values is None:
        values = keyed_values(fam, role, shape)
        if sum(int(_tensor_numel(v)) for v in _KEYED_CACHE.values()) + int(_tensor_numel(values)) <= _KEYED_CACHE_LIMIT:
            _KEYED_CACHE[key] = values
    return values


@torch.no_grad()
def keyed_fill(model: nn.Module) -> None:
    """Fill every floating parameter and buffer with keyed values, in float64."""
    _to(model, torch.float64)
    for _, module in _named_modules(model):
        fam = family(module)
        for store in (module._parameters, module._buffers):
            for role, tensor in store.items():
                if tensor is None or not tensor.is_floating_point():
                    continue
                tensor.copy_(_cached_keyed_values(fam, role, tuple(tensor.shape)))


def make_input(shape: list[int], seed: int = 0, positive: bool = False, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen, dtype=dtype)
    return x.abs() + 0.1 if positive else x


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu").numpy().copy()


def as_module(obj: Any) -> nn.Module:
    if not isinstance(obj, nn.Module):
        raise ProbeFailure(f"expected an nn.Module, got {type(obj).__name__}")
    return obj


def call(model: nn.Module, x: torch.Tensor) -> Any:
    return _module_call(model, x)


def output_tensor(out: Any) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise ProbeFailure(f"forward returned {type(out).__name__}, not a tensor")
    if type(out) is not torch.Tensor and not isinstance(out, nn.Parameter):
        # A Tensor subclass can override __eq__, __torch_function__ and friends.
        out = out.as_subclass(torch.Tensor)
    return out


def count_by_type(model: nn.Module) -> dict[str, int]:
    counts: Counter[str] = Counter()
    seen: set[int] = set()
    for _, module in _named_modules(model):
        for p in module._parameters.values():
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            counts[type(module).__name__] += int(_tensor_numel(p))
    return dict(counts)


def set_dropout(model: nn.Module, p: float) -> None:
    for module in _modules_of(model):
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = p


def kaiming_init(model: nn.Module, seed: int) -> None:
    torch.manual_seed(seed)
    for module in _modules_of(model):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def has_lazy_layers(model: nn.Module) -> bool:
    """Lazy layers (nn.LazyConv2d, nn.LazyBatchNorm2d, nn.LazyLinear) whose sizes are still unknown."""
    return any(isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params()
               for m in _modules_of(model))


@torch.no_grad()
def materialise(model: nn.Module, input_shape: list[int]) -> None:
    """Give lazy layers their sizes with one eval-mode forward of zeros (running statistics untouched)."""
    device = next((p.device for _, p in _named_parameters(model)), torch.device("cpu"))
    modes = [(m, m.training) for m in _modules_of(model)]
    _train(model, False)
    try:
        call(model, torch.zeros(*input_shape, device=device))
    finally:
        for module, training in modes:
            module.training = training


def materialising(build: Callable[[], Any], input_shape: list[int] | None, seen: list[list[int]]) -> Callable[[], Any]:
    """``build`` followed, for a module with lazy layers, by a dry run at ``input_shape`` (noted in ``seen``)."""
    if not input_shape:
        return build

    def built() -> Any:
        obj = build()
        # A function may return the model with something else, e.g. (model, resolution).
        for part in (obj if isinstance(obj, (tuple, list)) else (obj,)):
            if isinstance(part, nn.Module) and has_lazy_layers(part):
                materialise(part, input_shape)
                if input_shape not in seen:
                    seen.append(list(input_shape))
        return obj

    return built


# --------------------------------------------------------------------------- probes

@probe
def construct(build: Callable[[], Any]) -> dict[str, Any]:
    """Only build the target, on the meta device (nothing allocated or initialised)."""
    with torch.device("meta"):
        obj = build()
    return {"type": type(obj).__name__}


@probe
def describe(build: Callable[[], Any]) -> dict[str, Any]:
    """Build the target and say what it is."""
    obj = build()
    if isinstance(obj, nn.Module):
        return {"kind": "module", "type": type(obj).__name__,
                "params": sum(int(_tensor_numel(p)) for _, p in _named_parameters(obj)),
                "by_type": count_by_type(obj)}
    return {"kind": "other", "type": type(obj).__name__}


@probe
def param_count(build: Callable[[], Any]) -> dict[str, Any]:
    """Trainable parameters through the base nn.Module methods, total and by layer type."""
    model = as_module(build())
    params = [p for _, p in _named_parameters(model)]
    return {
        "total": sum(int(_tensor_numel(p)) for p in params),
        "trainable": sum(int(_tensor_numel(p)) for p in params if p.requires_grad),
        "by_type": count_by_type(model),
        "buffers": sum(int(_tensor_numel(b)) for b in model.buffers()),
    }


@probe
def forward_shape(build: Callable[[], Any], input_shape: list[int], mode: str = "eval") -> dict[str, Any]:
    model = as_module(build())
    _train(model, mode == "train")
    with torch.no_grad():
        out = output_tensor(call(model, make_input(input_shape, dtype=torch.float32)))
    return {"shape": list(out.shape), "dtype": str(out.dtype).replace("torch.", "")}


@probe
def keyed_forward(build: Callable[[], Any], input_shape: list[int], mode: str = "eval",
                  seed: int = 0, dropout_off: bool = False) -> dict[str, Any]:
    """Output under keyed float64 weights: equal to the reference's when the layers are the same."""
    model = as_module(build())
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
    model = as_module(build())
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
def shared_modules(build: Callable[[], Any]) -> dict[str, Any]:
    """Modules with parameters that appear at more than one place in the model (one object reused)."""
    model = as_module(build())
    first: dict[int, str] = {}
    shared: list[list[str]] = []
    for name, module in _named_modules(model, remove_duplicate=False):
        if not any(True for _ in _named_parameters(module)):
            continue
        if id(module) in first:
            shared.append([name, first[id(module)]])
        else:
            first[id(module)] = name
    return {"shared": shared}


@probe
def gradient_flow(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Train-mode backward from a non-leaf input: which parameters get no gradient, and whether it works."""
    model = as_module(build())
    keyed_fill(model)
    set_dropout(model, 0.0)
    _train(model, True)
    x = make_input(input_shape).requires_grad_(True)
    out = output_tensor(call(model, x * 1.0))
    out.square().mean().backward()
    without = []
    for name, p in _named_parameters(model):
        if p.grad is None or not bool(torch.any(p.grad != 0)):
            without.append(f"{name} {tuple(p.shape)}")
    return {"without_grad": without, "input_grad": float(x.grad.abs().sum()) if x.grad is not None else 0.0}


@probe
def input_mutation(build: Callable[[], Any], input_shape: list[int], mode: str = "eval") -> dict[str, Any]:
    model = as_module(build())
    keyed_fill(model)
    _train(model, mode == "train")
    x = make_input(input_shape)
    before = x.clone()
    with torch.no_grad():
        call(model, x)
    return {"mutated": not torch.equal(x, before)}


@probe
def meta_forward(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Forward with every tensor on the meta device: catches tensors created on the CPU and plain tensor attributes."""
    model = as_module(build())
    _to(model, "meta")
    _train(model, False)
    with torch.no_grad():
        out = output_tensor(call(model, torch.empty(*input_shape, device="meta")))
    return {"shape": list(out.shape), "device": str(out.device)}


@probe
def skip_zeroed(build: Callable[[], Any], input_shape: list[int], min_kernel: int = 2) -> dict[str, Any]:
    """Zero every conv whose kernel is at least ``min_kernel`` wide (the residual branch) and run in eval.

    A block with an identity skip then returns relu(x) (or x without a final ReLU);
    the gradient reaching the input is the shortcut's alone.
    """
    model = as_module(build())
    keyed_fill(model)
    with torch.no_grad():
        for module in _modules_of(model):
            if isinstance(module, nn.Conv2d) and max(module.kernel_size) >= min_kernel:
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
    _train(model, False)
    x = make_input(input_shape).requires_grad_(True)
    out = output_tensor(call(model, x * 1.0))
    out.sum().backward()
    return {"input": to_numpy(x), "output": to_numpy(out),
            "input_grad_abs": float(x.grad.abs().sum()) if x.grad is not None else 0.0}


@probe
def execution_trace(build: Callable[[], Any], input_shape: list[int], mode: str = "eval") -> dict[str, Any]:
    """The parametrised and structural layers that actually ran, in order, with their settings."""
    model = as_module(build())
    _train(model, mode == "train")
    rows: list[dict[str, Any]] = []
    watched = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.modules.pooling._MaxPoolNd,
               nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.dropout._DropoutNd)

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        row: dict[str, Any] = {"type": type(module).__name__,
                               "params": sum(int(_tensor_numel(p)) for p in module._parameters.values() if p is not None),
                               "in_shape": list(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else [],
                               "out_shape": list(output.shape) if isinstance(output, torch.Tensor) else []}
        if isinstance(module, nn.Conv2d):
            row.update(kernel=list(module.kernel_size), stride=list(module.stride), padding=list(module.padding)
                       if not isinstance(module.padding, str) else module.padding,
                       groups=module.groups, in_channels=module.in_channels, out_channels=module.out_channels,
                       bias=module.bias is not None)
        elif isinstance(module, nn.Linear):
            row.update(in_features=module.in_features, out_features=module.out_features, bias=module.bias is not None)
        elif isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            row.update(kernel=module.kernel_size, stride=module.stride, padding=module.padding)
        elif isinstance(module, nn.modules.dropout._DropoutNd):
            row.update(p=module.p)
        rows.append(row)

    handles = [m.register_forward_hook(hook) for m in _modules_of(model) if isinstance(m, watched)]
    try:
        with torch.no_grad():
            out = output_tensor(call(model, make_input(input_shape, dtype=torch.float32)))
    finally:
        for h in handles:
            h.remove()
    return {"layers": rows, "out_shape": list(out.shape)}


@probe
def receptive_fields(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Width of the input region that reaches the centre pixel of each output channel.

    With positive weights and a positive input every ReLU passes everything, so the
    support of the gradient is the receptive field of that channel.
    """
    model = as_module(build())
    keyed_fill(model)
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    _train(model, False)
    x = make_input(input_shape, positive=True).requires_grad_(True)
    out = output_tensor(call(model, x))
    channels, height, width = out.shape[1], out.shape[2], out.shape[3]
    widths = []
    for c in range(channels):
        if x.grad is not None:
            x.grad = None
        out[0, c, height // 2, width // 2].backward(retain_graph=True)
        support = (x.grad[0].abs().sum(0) > 0).any(0) if x.grad is not None else torch.zeros(1, dtype=torch.bool)
        widths.append(int(support.sum()))
    return {"widths": widths, "out_shape": list(out.shape)}


@probe
def batch_independence(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """In eval, the first sample's output must not depend on the other samples."""
    model = as_module(build())
    keyed_fill(model)
    _train(model, False)
    x = make_input(input_shape).requires_grad_(True)
    out = output_tensor(call(model, x))
    out[0].sum().backward()
    leak = float(x.grad[1:].abs().max()) if x.grad is not None and x.shape[0] > 1 else 0.0
    return {"leak": leak}


@probe
def stochasticity(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    """Two forwards in train mode should differ when there is dropout; two in eval must agree."""
    model = as_module(build())
    keyed_fill(model)
    x = make_input(input_shape)
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
    model = as_module(build())
    keyed_fill(model)
    _train(model, False)
    with torch.no_grad():
        out = output_tensor(call(model, make_input(input_shape)))
    sums = out.sum(dim=1)
    return {"looks_like_probabilities": bool(torch.all(out >= 0) and torch.allclose(sums, torch.ones_like(sums), atol=1e-6))}


@probe
def overfit(build: Callable[[], Any], input_shape: list[int], steps: int = 20, lr: float = 1e-3,
            num_classes: int = 10, seed: int = 0, kaiming: bool = False, dropout_off: bool = True,
            target_loss: float = 0.1, mode: str = "train") -> dict[str, Any]:
    """Overfit one small batch with Adam in train mode; stop early once the loss is below target.

    ``mode="eval"`` trains with the module in eval mode: for a network without
    BatchNorm that is train mode with every kind of dropout off, ``F.dropout``
    included.
    """
    torch.manual_seed(seed)
    model = as_module(build())
    if kaiming:
        kaiming_init(model, seed)
    if dropout_off:
        set_dropout(model, 0.0)
    _to(model, torch.float32)
    _train(model, mode == "train")
    x = make_input(input_shape, seed=seed, dtype=torch.float32)
    y = torch.arange(input_shape[0]) % num_classes
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    no_grad: list[str] = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(output_tensor(call(model, x)), y)
        loss.backward()
        if step == 0:
            no_grad = [n for n, p in _named_parameters(model) if p.grad is None or not bool(torch.any(p.grad != 0))]
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]) or losses[-1] < target_loss:
            break
        optimizer.step()
    return {"losses": np.array(losses, dtype=np.float64), "without_grad": no_grad}


@probe
def flops(build: Callable[[], Any], input_shape: list[int]) -> dict[str, Any]:
    from torch.utils.flop_counter import FlopCounterMode

    model = as_module(build())
    _train(model, False)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call(model, make_input(input_shape, dtype=torch.float32))
    return {"flops": int(counter.get_total_flops())}


@probe
def inference_time(build: Callable[[], Any], input_shape: list[int], repeats: int = 5) -> dict[str, Any]:
    model = as_module(build())
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


def plain(value: Any, depth: int = 0) -> Any:
    """Turn a function's return value into data that may cross the boundary."""
    if depth > 6:
        return repr(value)[:200]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, torch.Tensor):
        return to_numpy(value.as_subclass(torch.Tensor))
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, nn.Module):
        return {"__module__": type(value).__name__,
                "params": sum(int(_tensor_numel(p)) for _, p in _named_parameters(value))}
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, torch.device):
        return str(value)
    return {"__type__": type(value).__name__, "repr": repr(value)[:200]}


@probe
def call_function(build: Callable[[], Any]) -> dict[str, Any]:
    """Call a function target (``build`` does the call) and return its value as plain data."""
    return {"value": plain(build())}


@probe
def residual_zeroed(build: Callable[[], Any], input_shape: list[int], min_kernel: int = 2) -> dict[str, Any]:
    """Like ``skip_zeroed``, and every BatchNorm maps 0 to 0 (running mean and shift zeroed), in eval.

    The residual branch then outputs exactly zero, so an identity-shortcut block
    returns ``relu(x)`` exactly and a projection block ``relu(scale * conv1x1(x))``.
    ``input_grad`` is the gradient of ``out.sum()``: it reaches the input only
    through the shortcut.
    """
    model = as_module(build())
    keyed_fill(model)
    with torch.no_grad():
        for module in _modules_of(model):
            if isinstance(module, nn.modules.conv._ConvNd) and max(module.kernel_size) >= min_kernel:
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
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
def stack_gradient(build: Callable[[], Any], depth: int, input_shape: list[int], gain: float = 0.41) -> dict[str, Any]:
    """Chain ``depth`` fresh blocks and see how much gradient reaches each one.

    Keyed weights are scaled by ``gain`` (0.41 ~ PyTorch's default init relative
    to He init), the loss is the mean square of the last output. Without skip
    connections the gradient of the first blocks vanishes; with them it does not.
    """
    blocks = [as_module(build()) for _ in range(depth)]
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

    model = as_module(build())
    keyed_fill(model)
    x = make_input(input_shape)
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


# Probes for the practice tasks (training loops, visualisation) live beside this
# module and register themselves in PROBES on import.
from . import probes_tasks  # noqa: E402,F401
