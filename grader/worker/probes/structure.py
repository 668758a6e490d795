"""Probes of a module's structure: what it is built from.

In: a builder, and for the traced ones an input shape. Out: whether it constructs,
its type, its parameter counts by layer type, modules registered twice, the layers
a forward runs in order with their shapes (``execution_trace``, ``anatomy``), and
the receptive field of each output.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from .core import (_modules_of, _named_modules, _named_parameters, _tensor_numel, _train, FastMetaBatchNorm,
                   ProbeFailure, as_module, build_for_structure, build_without_random_init, built_for_forward, call,
                   count_by_type, keyed_fill, make_input, output_tensor, probe)


@probe
def construct(build: Callable[[], Any]) -> dict[str, Any]:
    """Only build the target, on the meta device (nothing allocated or initialised)."""
    with torch.device("meta"):
        obj = build()
    return {"type": type(obj).__name__}


@probe
def describe(build: Callable[[], Any]) -> dict[str, Any]:
    """Build the target and say what it is (on the meta device where it builds there)."""
    obj = build_for_structure(build)
    if isinstance(obj, nn.Module):
        return {"kind": "module", "type": type(obj).__name__,
                "params": sum(int(_tensor_numel(p)) for _, p in _named_parameters(obj)),
                "by_type": count_by_type(obj)}
    return {"kind": "other", "type": type(obj).__name__}


@probe
def param_count(build: Callable[[], Any]) -> dict[str, Any]:
    """Trainable parameters through the base nn.Module methods, total and by layer type (built on the meta device
    where it builds there)."""
    model = as_module(build_for_structure(build))
    params = [p for _, p in _named_parameters(model)]
    return {
        "total": sum(int(_tensor_numel(p)) for p in params),
        "trainable": sum(int(_tensor_numel(p)) for p in params if p.requires_grad),
        "by_type": count_by_type(model),
        "buffers": sum(int(_tensor_numel(b)) for b in model.buffers()),
    }


@probe
def shared_modules(build: Callable[[], Any]) -> dict[str, Any]:
    """Modules with parameters that appear at more than one place in the model (one object reused)."""
    model = as_module(build_for_structure(build))
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
def execution_trace(build: Callable[[], Any], input_shape: list[int], mode: str = "eval") -> dict[str, Any]:
    """The parametrised and structural layers that actually ran, in order, with their settings.

    Only shapes and settings are read, so the trace runs on the meta device (no
    weights initialised, no arithmetic); a model that cannot run there is traced
    on the CPU, so an error is the one the CPU gives.
    """
    try:
        return _execution_trace(build, input_shape, mode, on_meta=True)
    except Exception:  # noqa: BLE001 - traced again on the CPU
        return _execution_trace(build, input_shape, mode, on_meta=False)


def _execution_trace(build: Callable[[], Any], input_shape: list[int], mode: str, on_meta: bool) -> dict[str, Any]:
    model, x = built_for_forward(build, input_shape, on_meta)
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
        with torch.no_grad(), (FastMetaBatchNorm() if on_meta else contextlib.nullcontext()):
            out = output_tensor(call(model, x))
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
    model = as_module(build_without_random_init(build))
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


_WATCHED = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.modules.pooling._MaxPoolNd,
            nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
            nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.dropout._DropoutNd)

_OP_NAMES = {"relu", "convolution", "max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d",
             "_adaptive_avg_pool2d", "mean", "cat", "native_batch_norm", "_native_batch_norm_legit",
             "_native_batch_norm_legit_no_training", "_softmax", "_log_softmax", "addmm", "mm", "linear",
             "native_dropout", "bernoulli", "hardtanh", "sigmoid", "gelu", "add", "add_", "mul", "view", "_unsafe_view",
             "clamp", "clamp_min", "leaky_relu", "silu", "tanh"}


def _op_name(func: Any) -> str:
    try:
        name = func.overloadpacket.__name__
    except AttributeError:
        name = getattr(func, "__name__", str(func))
    return name


class _OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.cat_dims: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = _op_name(func)
        base = name[:-1] if name.endswith("_") and not name.startswith("_") else name
        if base in ("batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                    "native_batch_norm", "cudnn_batch_norm", "_batch_norm_impl_index"):
            base = "batch_norm"
        if base in ("max_pool2d_with_indices",):
            base = "max_pool2d"
        if base in ("_adaptive_avg_pool2d",):
            base = "adaptive_avg_pool2d"
        if base in ("_softmax",):
            base = "softmax"
        if base in ("_log_softmax",):
            base = "log_softmax"
        if base in ("native_dropout",):
            base = "dropout"
        if base in _OP_NAMES or base in ("batch_norm", "softmax", "log_softmax", "dropout"):
            self.ops[base] += 1
        if base == "cat":
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            try:
                ndim = args[0][0].dim()
                self.cat_dims.append(int(dim) % ndim)
            except Exception:  # noqa: BLE001
                self.cat_dims.append(int(dim))
        return func(*args, **kwargs)


def _layer_row(module: nn.Module, inputs: tuple, output: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"type": type(module).__name__,
                           "params": sum(int(_tensor_numel(p)) for p in module._parameters.values() if p is not None),
                           "in_shape": list(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else [],
                           "out_shape": list(output.shape) if isinstance(output, torch.Tensor) else []}
    if isinstance(module, nn.Conv2d):
        row.update(kernel=list(module.kernel_size), stride=list(module.stride),
                   padding=list(module.padding) if not isinstance(module.padding, str) else module.padding,
                   groups=module.groups, in_channels=module.in_channels, out_channels=module.out_channels,
                   bias=module.bias is not None)
    elif isinstance(module, nn.Linear):
        row.update(in_features=module.in_features, out_features=module.out_features, bias=module.bias is not None)
    elif isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        def two(v: Any) -> list[int]:
            return list(v) if isinstance(v, (tuple, list)) else [int(v), int(v)]
        row.update(kernel=two(module.kernel_size), stride=two(module.stride if module.stride is not None else module.kernel_size),
                   padding=two(module.padding))
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        row.update(num_features=module.num_features)
    elif isinstance(module, nn.modules.dropout._DropoutNd):
        row.update(p=float(module.p))
    return row


@probe
def anatomy(build: Callable[[], Any], input_shape: list[int], mode: str = "eval") -> dict[str, Any]:
    """What a forward does, for explaining a failure: layers that ran, ATen ops, cat dims, and any error.

    Never raises on a failing forward: the layers that ran before the error and
    the error itself come back, so a crash can be explained (e.g. which branch
    produced the odd spatial size).
    """
    model = as_module(build_without_random_init(build))
    _train(model, mode == "train")
    rows: list[dict[str, Any]] = []

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        rows.append(_layer_row(module, inputs, output))

    handles = [m.register_forward_hook(hook) for m in _modules_of(model) if isinstance(m, _WATCHED)]
    counter = _OpCounter()
    error, shape = None, None
    try:
        with torch.no_grad(), counter:
            out = output_tensor(call(model, make_input(input_shape, dtype=torch.float32)))
        shape = list(out.shape)
    except ProbeFailure as e:
        error = str(e)
    except Exception as e:  # noqa: BLE001 - the student's forward may raise anything
        error = f"{type(e).__name__}: {e}"[:600]
    finally:
        for h in handles:
            h.remove()
    params = [p for _, p in _named_parameters(model)]
    return {"ok": error is None, "error": error, "shape": shape, "layers": rows, "ops": dict(counter.ops),
            "cat_dims": counter.cat_dims, "params": sum(int(_tensor_numel(p)) for p in params),
            "by_type": count_by_type(model), "module_type": type(model).__name__,
            "module_types": dict(Counter(type(m).__name__ for m in _modules_of(model)))}
