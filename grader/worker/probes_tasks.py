"""Probes for the practice tasks: training loops, feature visualisation, scaling.

They register into ``probes.PROBES`` with the same ``@probe`` decorator and, like
every probe, run unchanged on the reference (trusted side) and on a submission
(in the sandboxed worker). Only torch, numpy and the standard library are used.

The training-loop probes build a tiny network and loader themselves, hand them
to the function under test and watch what it does with them: the calls it makes
on the model and the optimizer, whether batches reach the model on the device,
the model's mode and the autograd state during each forward, and whether a
loss tensor (with its graph) outlives its batch. The outcome is also checked
against a replay of the correct protocol on a copy of the same network.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import struct
import tempfile
import time
import weakref
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils._python_dispatch import TorchDispatchMode

from .probes import (
    _modules_of,
    _named_parameters,
    _tensor_numel,
    _to,
    _train,
    ProbeFailure,
    as_module,
    call,
    count_by_type,
    kaiming_init,
    make_input,
    output_tensor,
    probe,
    set_dropout,
    to_numpy,
)


# --------------------------------------------------------------------------- anatomy of a forward

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
    model = as_module(build())
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


# --------------------------------------------------------------------------- networks on a GPU

def _cuda_ready() -> tuple[bool, str]:
    try:
        if not torch.cuda.is_available():
            return False, "this grading sandbox has no GPU"
    except Exception as e:  # noqa: BLE001
        return False, f"CUDA could not start: {type(e).__name__}"
    return True, ""


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


# --------------------------------------------------------------------------- the training-loop practice task

class _TinyNet(nn.Module):
    """conv-BN-ReLU, global pool, linear: BN makes train and eval mode give different results."""

    def __init__(self, width: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(F.relu(self.bn(self.conv(x)))), 1))


def _tiny_net(seed: int, width: int = 4, classes: int = 3) -> _TinyNet:
    torch.manual_seed(seed)
    net = _TinyNet(width, classes)
    with torch.no_grad():
        net.bn.running_mean.copy_(torch.linspace(-0.3, 0.3, width))
        net.bn.running_var.copy_(torch.linspace(0.5, 2.0, width))
        net.bn.weight.copy_(torch.linspace(0.8, 1.2, width))
        net.bn.bias.copy_(torch.linspace(-0.1, 0.1, width))
    return net


def _tiny_data(n: int, seed: int, classes: int = 3, size: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=gen)
    y = torch.arange(n) % classes
    y = y[torch.randperm(n, generator=gen)]
    x = x + y.view(-1, 1, 1, 1).float() * 0.5
    return x, y


def _device_text(args: tuple, kwargs: dict) -> str:
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, (torch.device, str)):
            return str(a)
        if isinstance(a, torch.Tensor):
            return str(a.device)
    return "?"


class _Watch:
    """Shared state of one protocol probe: an event log and the loss tensors still alive."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.batch = -1
        self.live: list[tuple[Any, int]] = []
        self.kept_graph_at: list[int] = []
        self.loss_ops: list[str] = []
        self.loss_values: list[float] = []


def _tracked_types(watch: _Watch) -> tuple[type, type, type]:
    """Tensor subclasses for a batch's inputs and labels (they log .to()) and for the loss."""

    class Inputs(torch.Tensor):
        def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
            watch.events.append(f"inputs.to({_device_text(args, kwargs)})")
            return torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs)

        def cuda(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
            watch.events.append("inputs.to(cuda)")
            return torch.Tensor.cuda(self.as_subclass(torch.Tensor), *args, **kwargs)

    class Labels(torch.Tensor):
        def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
            watch.events.append(f"labels.to({_device_text(args, kwargs)})")
            return torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs)

        def cuda(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
            watch.events.append("labels.to(cuda)")
            return torch.Tensor.cuda(self.as_subclass(torch.Tensor), *args, **kwargs)

    class Loss(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            ret = super().__torch_function__(func, types, args, kwargs)
            if isinstance(ret, cls) and ret.requires_grad and name not in ("backward", "__get__", "__set__"):
                found: list[int] = []

                def walk(v: Any) -> None:
                    if isinstance(v, cls) and getattr(v, "_batch", None) is not None:
                        found.append(v._batch)
                    elif isinstance(v, (list, tuple)):
                        for item in v:
                            walk(item)

                walk(args)
                walk(list(kwargs.values()))
                if found and getattr(ret, "_batch", None) is None:
                    ret._batch = min(found)
                    watch.live.append((weakref.ref(ret), ret._batch))
                    watch.loss_ops.append(name)
            return ret

    return Inputs, Labels, Loss


def _recorded_model(inner: nn.Module, watch: _Watch, inputs_type: type) -> nn.Module:
    class Recorded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = inner

        def train(self, mode: bool = True) -> "Recorded":
            watch.events.append("model.train()" if mode else "model.eval()")
            return super().train(mode)

        def zero_grad(self, set_to_none: bool = True) -> None:
            watch.events.append("model.zero_grad()")
            super().zero_grad(set_to_none)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            moved = not isinstance(x, inputs_type)
            grads = [p.grad for p in self.net.parameters()]
            stale = any(g is not None and bool(torch.any(g != 0)) for g in grads)
            watch.events.append(f"forward(mode={'train' if self.training else 'eval'}, grad={'on' if torch.is_grad_enabled() else 'off'}, "
                                f"inputs={'moved' if moved else 'not moved'}, old_grads={'yes' if stale else 'no'})")
            return self.net(x.as_subclass(torch.Tensor) if not moved else x)

    model = Recorded()
    super(Recorded, model).train(True)
    return model


def _recorded_criterion(watch: _Watch, labels_type: type, loss_type: type) -> nn.Module:
    class Criterion(nn.CrossEntropyLoss):
        def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            watch.batch += 1
            k = watch.batch
            gc_old = [b for ref, b in watch.live if ref() is not None and b <= k - 2]
            if gc_old:
                watch.kept_graph_at.append(k)
            moved = not isinstance(target, labels_type)
            watch.events.append(f"criterion(labels={'moved' if moved else 'not moved'})")
            loss = super().forward(logits.as_subclass(torch.Tensor), target.as_subclass(torch.Tensor))
            watch.loss_values.append(float(loss.detach()))
            if loss.requires_grad:
                loss.register_hook(lambda g: watch.events.append("backward") or None)
            loss = loss.as_subclass(loss_type)
            loss._batch = k
            watch.live.append((weakref.ref(loss), k))
            return loss

    return Criterion()


def _recorded_optimizer(params: Any, watch: _Watch, kind: str = "sgd", lr: float = 0.1) -> torch.optim.Optimizer:
    base = torch.optim.SGD if kind == "sgd" else torch.optim.Adam

    class Recorded(base):  # type: ignore[misc, valid-type]
        def zero_grad(self, set_to_none: bool = True) -> None:
            watch.events.append("optimizer.zero_grad()")
            super().zero_grad(set_to_none)

        def step(self, closure: Any = None) -> Any:
            watch.events.append("optimizer.step()")
            return super().step(closure)

    return Recorded(params, lr=lr)


class _Loader:
    """A list of batches that also has what a DataLoader offers (len, dataset, batch_size)."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]], dataset: Any, batch_size: int) -> None:
        self.batches = batches
        self.dataset = dataset
        self.batch_size = batch_size

    def __iter__(self):  # noqa: ANN204
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


def _tracked_loader(x: torch.Tensor, y: torch.Tensor, batch: int, inputs_type: type, labels_type: type) -> _Loader:
    batches = [(x[i : i + batch].clone().as_subclass(inputs_type), y[i : i + batch].clone().as_subclass(labels_type))
               for i in range(0, len(x), batch)]
    return _Loader(batches, torch.utils.data.TensorDataset(x, y), batch)


def _describe_return(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "bool", "value": float(value)}
    if isinstance(value, (int, float)):
        return {"type": type(value).__name__, "value": float(value)}
    if isinstance(value, np.generic):
        return {"type": "numpy", "value": float(value)}
    if isinstance(value, torch.Tensor):
        plain = value.as_subclass(torch.Tensor)
        out: dict[str, Any] = {"type": "tensor", "requires_grad": bool(plain.requires_grad), "shape": list(plain.shape)}
        if plain.numel() == 1:
            out["value"] = float(plain.detach().reshape(()).item())
        return out
    if isinstance(value, (tuple, list)):
        return {"type": type(value).__name__, "items": [_describe_return(v) for v in value]}
    return {"type": type(value).__name__}


def _params_diff(a: nn.Module, b: nn.Module) -> float:
    diffs = [float((p.detach() - q.detach()).abs().max()) for p, q in zip(a.parameters(), b.parameters())]
    return max(diffs) if diffs else 0.0


def _compress(events: list[str], limit: int = 80) -> list[str]:
    """Collapse repeats (``x3``) and keep the log short."""
    out: list[str] = []
    for e in events:
        if out and out[-1].split(" x", 1)[0] == e and out[-1].startswith(e):
            head, _, n = out[-1].rpartition(" x")
            out[-1] = f"{e} x{int(n) + 1}" if head == e else f"{e} x2"
        else:
            out.append(e)
    return out[:limit]


@probe
def training_protocol(build: Callable[[], Any], batches: int = 3, batch_size: int = 4, lr: float = 0.1,
                      seed: int = 0) -> dict[str, Any]:
    """Call ``train_one_epoch`` on a tiny BN network that starts in eval mode, and watch it.

    The result is compared with one correct epoch (``train()``, per batch: move to
    the device, ``zero_grad``, forward, loss, ``backward``, ``step``) replayed on a
    copy of the same network with the same data.
    """
    fn = build()
    watch = _Watch()
    inputs_type, labels_type, loss_type = _tracked_types(watch)
    inner = _tiny_net(seed)
    replay = copy.deepcopy(inner)
    x, y = _tiny_data(batches * batch_size, seed + 1)
    loader = _tracked_loader(x, y, batch_size, inputs_type, labels_type)
    model = _recorded_model(inner, watch, inputs_type)
    super(type(model), model).train(False)  # as if evaluate() ran last
    optimizer = _recorded_optimizer(model.parameters(), watch, "sgd", lr)
    criterion = _recorded_criterion(watch, labels_type, loss_type)
    device = torch.device("cpu")
    torch.manual_seed(seed + 2)
    returned = fn(model, loader, optimizer, criterion, device)
    described = _describe_return(returned)
    del returned
    kept_after = [b for ref, b in watch.live if ref() is not None and b < watch.batch]

    # the correct protocol, replayed
    replay.train()
    ref_opt = torch.optim.SGD(replay.parameters(), lr=lr)
    losses = []
    for i in range(0, len(x), batch_size):
        ref_opt.zero_grad()
        loss = F.cross_entropy(replay(x[i : i + batch_size]), y[i : i + batch_size])
        loss.backward()
        ref_opt.step()
        losses.append(loss.item())
    forwards = [e for e in watch.events if e.startswith("forward(")]
    criteria = [e for e in watch.events if e.startswith("criterion(")]
    return {
        "events": _compress(watch.events),
        "batches": batches,
        "forwards": len(forwards),
        "forward_modes": ["train" if "mode=train" in e else "eval" for e in forwards],
        "grad_on": [("grad=on" in e) for e in forwards],
        "inputs_moved": [("inputs=moved" in e) for e in forwards],
        "labels_moved": [("labels=moved" in e) for e in criteria],
        "criterion_calls": len(criteria),
        "old_grads_at_forward": [("old_grads=yes" in e) for e in forwards],
        "zero_grad_calls": sum(e in ("optimizer.zero_grad()", "model.zero_grad()") for e in watch.events),
        "step_calls": sum(e == "optimizer.step()" for e in watch.events),
        "backward_calls": sum(e == "backward" for e in watch.events),
        "train_calls": sum(e == "model.train()" for e in watch.events),
        "kept_graph": bool(watch.kept_graph_at) or bool(kept_after),
        "returned": described,
        "expected_loss": float(sum(losses) / len(losses)),
        "batch_losses": losses,
        "observed_losses": watch.loss_values,
        "param_diff": _params_diff(inner, replay),
        "bn_stats_diff": float((inner.bn.running_mean - replay.bn.running_mean).abs().max()),
    }


@probe
def evaluate_protocol(build: Callable[[], Any], batches: int = 3, batch_size: int = 4, seed: int = 0) -> dict[str, Any]:
    """Call ``evaluate`` on a tiny BN network that starts in train mode, and watch it."""
    fn = build()
    watch = _Watch()
    inputs_type, labels_type, loss_type = _tracked_types(watch)
    inner = _tiny_net(seed + 5)
    before = copy.deepcopy(inner)
    x, y = _tiny_data(batches * batch_size, seed + 6)
    loader = _tracked_loader(x, y, batch_size, inputs_type, labels_type)
    model = _recorded_model(inner, watch, inputs_type)
    criterion = _recorded_criterion(watch, labels_type, loss_type)
    returned = fn(model, loader, criterion, torch.device("cpu"))
    described = _describe_return(returned)
    del returned
    before.eval()
    with torch.no_grad():
        logits = before(x)
        loss = float(F.cross_entropy(logits, y))
        accuracy = float((logits.argmax(1) == y).float().mean())
        batch_means = [float(F.cross_entropy(before(x[i : i + batch_size]), y[i : i + batch_size]))
                       for i in range(0, len(x), batch_size)]
    state_changed = any(not torch.equal(a, b) for a, b in zip(inner.state_dict().values(), before.state_dict().values()))
    forwards = [e for e in watch.events if e.startswith("forward(")]
    criteria = [e for e in watch.events if e.startswith("criterion(")]
    return {
        "events": _compress(watch.events),
        "forwards": len(forwards),
        "forward_modes": ["train" if "mode=train" in e else "eval" for e in forwards],
        "grad_on": [("grad=on" in e) for e in forwards],
        "inputs_moved": [("inputs=moved" in e) for e in forwards],
        "labels_moved": [("labels=moved" in e) for e in criteria],
        "criterion_calls": len(criteria),
        "backward_calls": sum(e == "backward" for e in watch.events),
        "returned": described,
        "expected_loss": loss,
        "expected_batch_mean_loss": float(sum(batch_means) / len(batch_means)),
        "expected_accuracy": accuracy,
        "samples": int(len(x)),
        "state_changed": state_changed,
    }


_SYNC_NAMES = ("torch.cuda.synchronize", "Event.synchronize", "Event.elapsed_time", "Stream.synchronize")


@probe
def compare_protocol(build: Callable[[], Any], epochs: int = 2, lr: float = 0.01, device: str = "cpu",
                     seed: int = 0) -> dict[str, Any]:
    """Call ``train_and_compare`` with two tiny networks and small loaders, and check what it reports.

    On ``device="cuda"`` it also logs CUDA synchronisation and clock reads, to
    see whether the training time was read after the GPU had finished.
    """
    if device == "cuda":
        ok, why = _cuda_ready()
        if not ok:
            return {"cuda": False, "reason": why}
    fn = build()
    events: list[str] = []
    nets = {"narrow": _tiny_net(seed, 4), "wide": _tiny_net(seed + 1, 8)}
    initial = {k: copy.deepcopy(v) for k, v in nets.items()}
    x, y = _tiny_data(24, seed + 3)
    xt, yt = _tiny_data(12, seed + 3)  # the same class patterns
    xt = xt + 0.1
    dataset = torch.utils.data.TensorDataset(x, y)
    train_loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=False)
    test_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xt, yt), batch_size=6, shuffle=False)

    def fwd_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            events.append(f"forward:{name}:{'train' if module.training else 'eval'}")
        return hook

    handles = [net.register_forward_hook(fwd_hook(name)) for name, net in nets.items()]
    # Optimizer steps mark where training ends, whatever mode or autograd state the forwards ran in.
    handles.append(register_optimizer_step_post_hook(lambda *_: events.append("step")))
    patched: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr, None)
        if original is None:
            return

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            events.append(label)
            return original(*args, **kwargs)

        patched.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    if device == "cuda":
        patch(torch.cuda, "synchronize", "sync")
        patch(torch.cuda.Event, "synchronize", "sync")
        patch(torch.cuda.Event, "elapsed_time", "sync")
        patch(torch.cuda.Stream, "synchronize", "sync")
    started = time.perf_counter()
    clocks = ("time", "perf_counter", "monotonic", "perf_counter_ns", "time_ns")
    originals = [getattr(time, clock) for clock in clocks]
    # A clock imported by name (from time import perf_counter) is read through the function's globals.
    namespace = getattr(fn, "__globals__", {})
    imported = {key: value for key, value in namespace.items() if any(value is o for o in originals)}
    for clock in clocks:
        patch(time, clock, "clock")
    for key, value in imported.items():
        namespace[key] = getattr(time, clocks[next(i for i, o in enumerate(originals) if value is o)])
    for name, net in nets.items():
        # Moving a model shows as an event even where every device is the CPU.
        for method in ("to", "cuda"):
            patch(net, method, f"move:{name}")
    try:
        torch.manual_seed(seed + 4)
        result = fn(nets, train_loader, test_loader, epochs=epochs, lr=lr, device=torch.device(device))
    finally:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)
        namespace.update(imported)
        wall = time.perf_counter() - started
        for h in handles:
            h.remove()

    out: dict[str, Any] = {"cuda": device == "cuda", "wall_s": wall, "result_type": type(result).__name__,
                           "events": _compress(events, 120)}
    if not isinstance(result, dict):
        return out
    out["keys"] = [str(k) for k in result]
    entries: dict[str, Any] = {}
    for name, net in nets.items():
        entry = result.get(name)
        info: dict[str, Any] = {"type": type(entry).__name__}
        if isinstance(entry, dict):
            info["fields"] = sorted(str(k) for k in entry)
            info["values"] = {str(k): _describe_return(v) for k, v in entry.items()}
            hist = entry.get("history")
            if isinstance(hist, (list, tuple)):
                info["history"] = [_describe_return(v) for v in hist]
        info["true_params"] = sum(int(_tensor_numel(p)) for p in net.parameters())
        info["param_devices"] = sorted({str(p.device) for p in net.parameters()})
        net_cpu = net.to("cpu")
        net_cpu.eval()
        with torch.no_grad():
            info["true_accuracy"] = float((net_cpu(xt).argmax(1) == yt).float().mean())
        # replay: Adam(lr), cross-entropy, `epochs` correct epochs on a copy of the initial network
        replay = initial[name]
        opt = torch.optim.Adam(replay.parameters(), lr=lr)
        history = []
        for _ in range(epochs):
            replay.train()
            total = 0.0
            for xb, yb in train_loader:
                opt.zero_grad()
                loss = F.cross_entropy(replay(xb), yb)
                loss.backward()
                opt.step()
                total += loss.item()
            history.append(total / len(train_loader))
        info["replay_history"] = history
        info["param_diff"] = _params_diff(net_cpu, replay)
        entries[name] = info
    out["entries"] = entries
    if device == "cuda":
        out["sync_after_training"] = _synced_after_training(events, list(nets))
    out["moved_before_training"] = _moved_before_training(events, list(nets))
    out["clock_before_evaluation"] = _clock_before_evaluation(events, list(nets))
    out["clock_reads"] = events.count("clock")
    return out


def _moved_before_training(events: list[str], names: list[str]) -> dict[str, bool]:
    """For each model: it was moved (``.to``/``.cuda``) before its first training forward."""
    verdict = {}
    for name in names:
        first = next((i for i, e in enumerate(events) if e == f"forward:{name}:train"), len(events))
        verdict[name] = f"move:{name}" in events[:first]
    return verdict


def _clock_before_evaluation(events: list[str], names: list[str]) -> dict[str, bool]:
    """For each model: the clock is read after its last optimizer step and before the next forward (its evaluation).

    A model whose training shows no optimizer step cannot be judged here and passes.
    """
    verdict = {}
    for name in names:
        mine = [i for i, e in enumerate(events) if e.startswith(f"forward:{name}:")]
        if not mine:
            verdict[name] = False
            continue
        end = next((i for i in range(mine[0], len(events))
                    if events[i].startswith("forward:") and not events[i].startswith(f"forward:{name}:")), len(events))
        steps = [i for i in range(mine[0], end) if events[i] == "step"]
        if not steps:
            verdict[name] = True
            continue
        after = next((i for i in range(steps[-1] + 1, len(events)) if events[i].startswith("forward:")), len(events))
        verdict[name] = "clock" in events[steps[-1] + 1:after]
    return verdict


def _synced_after_training(events: list[str], names: list[str]) -> dict[str, bool]:
    """For each model: a synchronisation between its last training forward and the next clock read."""
    verdict = {}
    for name in names:
        train_idx = [i for i, e in enumerate(events) if e == f"forward:{name}:train"]
        if not train_idx:
            verdict[name] = False
            continue
        last = train_idx[-1]
        later_clocks = [i for i in range(last + 1, len(events)) if events[i] == "clock"]
        end = later_clocks[0] if later_clocks else next(
            (i for i in range(last + 1, len(events)) if events[i].startswith("forward:") and not events[i].endswith(":train")),
            len(events))
        verdict[name] = any(events[i] == "sync" for i in range(last + 1, end))
    return verdict


@probe
def device_choice(build: Callable[[], Any]) -> dict[str, Any]:
    """What ``get_device()`` returns here, next to whether this process can use CUDA."""
    fn = build()
    value = fn()
    ok, _ = _cuda_ready()
    return {"type": type(value).__name__, "is_device": isinstance(value, torch.device),
            "text": str(value), "device_type": value.type if isinstance(value, torch.device) else str(value),
            "cuda_available": ok}


# --------------------------------------------------------------------------- visualisation

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


# --------------------------------------------------------------------------- scaling (bonus)

@probe
def meta_cost(build: Callable[[], Any], input_shape: list[int] | None = None) -> dict[str, Any]:
    """Build on the meta device (no memory, no init cost); count parameters and FLOPs of one forward.

    ``build()`` may return a model or ``(model, resolution)``; without ``input_shape``
    the input is ``(1, 3, resolution, resolution)``.
    """
    from torch.utils.flop_counter import FlopCounterMode

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
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            y = output_tensor(call(model, torch.empty(*shape, device="meta")))
        out["flops"] = int(counter.get_total_flops())
        out["out_shape"] = list(y.shape)
    return out
