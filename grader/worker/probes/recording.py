"""The recording machinery of the training-loop probes: a tiny network, data and a loader that watch what is done with them.

In: what a training or evaluation function does with the model, criterion,
optimizer and loader it is handed. Out: a ``_Watch`` holding the events (calls on
the model and the optimizer, batches and where they were, the model's mode and
the autograd state during each forward, losses kept past their batch).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


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
