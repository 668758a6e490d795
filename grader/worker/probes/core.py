"""What every probe is built on: the probe table, the decorator that fills it, and the shared helpers.

In: a builder (``build()`` returns a fresh module, or the function itself for
function targets). Out: helpers that make inputs from a fixed seed (``make_input``,
the keyed values), call a module and take its output tensor, count parameters,
materialise lazy layers, and turn any value into plain data (``plain``). The
methods of ``nn.Module`` and ``Tensor`` the probes rely on are captured here before
any student module is imported.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode


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
def keyed_fill(model: nn.Module, dtype: torch.dtype = torch.float64) -> None:
    """Fill every floating parameter and buffer with keyed values, in ``dtype``: float64 where outputs are
    compared with the reference's, float32 (twice as fast on a CPU) where only a property is read."""
    _to(model, dtype)
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


# torch.nn.init's random fills, captured before any student module is imported.
_RANDOM_INITS = {name: getattr(nn.init, name) for name in (
    "uniform_", "normal_", "trunc_normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_", "orthogonal_", "sparse_") if hasattr(nn.init, name)}


def _zero_fill_for(original: Callable[..., Any]) -> Callable[..., Any]:
    def fill(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(tensor, torch.Tensor) or tensor.device.type == "meta":
            return original(tensor, *args, **kwargs)
        try:
            # The same call on a meta tensor of that shape: arguments the original refuses raise here, as
            # they would have, and no random number is drawn.
            original(torch.empty(tuple(tensor.shape), dtype=tensor.dtype, device="meta"), *args, **kwargs)
        except Exception:  # noqa: BLE001 - refused, or no meta version: the original, on the tensor itself
            return original(tensor, *args, **kwargs)
        with torch.no_grad():
            tensor.zero_()
        return tensor
    return fill


def build_without_random_init(build: Callable[[], Any]) -> Any:
    """``build()`` with ``torch.nn.init``'s random fills writing zeros instead.

    For probes whose result does not depend on the initial weights: those that
    overwrite every parameter and buffer with keyed values, and those that read
    shapes, operations or timings. Drawing random weights was up to half of
    their build time (a ResNet-18 has 11 million). A layer's own
    ``reset_parameters``, the student's explicit init calls and any argument
    checks behave as before; only the values drawn differ.
    """
    init = nn.init
    before = {name: getattr(init, name, None) for name in _RANDOM_INITS}
    for name, original in _RANDOM_INITS.items():
        setattr(init, name, _zero_fill_for(original))
    try:
        return build()
    finally:
        for name, fn in before.items():
            setattr(init, name, fn)


def _meta_batch_norm(args: tuple, kwargs: dict) -> tuple[torch.Tensor, ...] | None:
    """``aten.native_batch_norm``'s outputs on the meta device, made directly; None where the case is not the
    plain one (then the op's own meta kernel runs, with whatever it raises)."""
    if kwargs or len(args) != 8:
        return None
    x, weight, bias, running_mean, running_var, training = args[:6]
    if not isinstance(x, torch.Tensor) or x.device.type != "meta" or x.dim() < 2 or not x.is_floating_point():
        return None
    if not (x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))):
        return None
    channels = x.shape[1]
    for t in (weight, bias, running_mean, running_var):
        if t is not None and not (isinstance(t, torch.Tensor) and t.device.type == "meta" and t.dim() == 1
                                  and t.shape[0] == channels and t.dtype == x.dtype):
            return None
    if not isinstance(training, bool) or (not training and (running_mean is None or running_var is None)):
        return None
    stats_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    return (torch.empty_like(x), torch.empty(channels, dtype=stats_dtype, device="meta"),
            torch.empty(channels, dtype=stats_dtype, device="meta"))


class FastMetaBatchNorm(TorchDispatchMode):
    """A dispatch mode under which batch norm on the meta device costs microseconds.

    Its meta kernel is a Python decomposition (about 30 operations, 1.5-2 ms a call):
    nine tenths of a ResNet-18 forward on the meta device. For the plain case (a dense
    input, per-channel tensors of its dtype) the outputs' shapes, dtypes and strides
    are made directly, as that kernel makes them; any other case runs the kernel.
    """

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is torch.ops.aten.native_batch_norm.default:
            made = _meta_batch_norm(args, kwargs or {})
            if made is not None:
                return made
        return func(*args, **(kwargs or {}))


def build_for_structure(build: Callable[[], Any]) -> Any:
    """The target built for a probe that reads only its structure (layers, parameter counts).

    It is built on the meta device first: nothing is allocated or initialised,
    which for a network is most of a build's time. A target that cannot be built
    there is built as usual, so whatever it raises is what it raises on the CPU.
    """
    try:
        with torch.device("meta"):
            return build()
    except Exception:  # noqa: BLE001 - built again on the CPU, where its own error shows
        return build()


def built_for_forward(build: Callable[[], Any], input_shape: list[int], on_meta: bool,
                      meta_dtype: torch.dtype | None = None) -> tuple[nn.Module, torch.Tensor]:
    """The target and an input for a forward whose shapes, not values, are read: on the meta device (nothing
    allocated or initialised; an empty input of ``meta_dtype``, the default dtype when None), or on the CPU
    (built without random weights; the probes' float32 input)."""
    if on_meta:
        with torch.device("meta"):
            model = as_module(build())
        return model, torch.empty(*input_shape, dtype=meta_dtype, device="meta")
    return as_module(build_without_random_init(build)), make_input(input_shape, dtype=torch.float32)


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
