"""Probes of training loops: does the function under test train and evaluate as it should.

In: a builder that returns the training, evaluation or device function under test
(or, for ``overfit``, a model). Out: the events recorded while it ran
(``recording``), checked against a replay of the correct protocol on a copy of the
same network; for ``compare_protocol``, whether models are moved before training,
the clock is read after synchronising and before evaluating; whether a model
overfits one batch; what ``get_device()`` returns here.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook

from .core import (_named_parameters, _tensor_numel, _to, _train, as_module, call, kaiming_init, make_input,
                   output_tensor, probe, set_dropout)
from .gpu import _cuda_ready
from .recording import (_Watch, _compress, _describe_return, _params_diff, _recorded_criterion, _recorded_model,
                        _recorded_optimizer, _tiny_data, _tiny_net, _tracked_loader, _tracked_types)


def adam(params: Any, lr: float) -> torch.optim.Optimizer:
    """Adam with its fused kernel (one pass over each parameter per step, several times faster on a CPU
    than the loop of element-wise ops; the same steps up to rounding) when every parameter is a dense real
    floating tensor on the CPU; plain Adam otherwise."""
    params = list(params)
    if all(isinstance(p, torch.Tensor) and p.is_floating_point() and p.device.type == "cpu" and p.layout == torch.strided
           for p in params):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(params, lr=lr)


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
    optimizer = adam(model.parameters(), lr)
    losses: list[float] = []
    no_grad: list[str] = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(output_tensor(call(model, x)), y)
        losses.append(float(loss.detach()))
        done = not math.isfinite(losses[-1]) or losses[-1] < target_loss
        if done and step > 0:
            break  # a backward pass here would feed no step: the last loss is all that is kept
        loss.backward()
        if step == 0:
            no_grad = [n for n, p in _named_parameters(model) if p.grad is None or not bool(torch.any(p.grad != 0))]
        if done:
            break
        optimizer.step()
    return {"losses": np.array(losses, dtype=np.float64), "without_grad": no_grad}


def _loop_summary(events: list[str]) -> dict[str, Any]:
    """What a recorded loop did, call by call: its forwards (mode, autograd, inputs moved), the criterion's
    calls (labels moved) and the backward passes."""
    forwards = [e for e in events if e.startswith("forward(")]
    criteria = [e for e in events if e.startswith("criterion(")]
    return {
        "events": _compress(events),
        "forwards": len(forwards),
        "forward_modes": ["train" if "mode=train" in e else "eval" for e in forwards],
        "grad_on": [("grad=on" in e) for e in forwards],
        "inputs_moved": [("inputs=moved" in e) for e in forwards],
        "labels_moved": [("labels=moved" in e) for e in criteria],
        "criterion_calls": len(criteria),
        "backward_calls": sum(e == "backward" for e in events),
    }


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
    return {
        **_loop_summary(watch.events),
        "batches": batches,
        "old_grads_at_forward": [("old_grads=yes" in e) for e in forwards],
        "zero_grad_calls": sum(e in ("optimizer.zero_grad()", "model.zero_grad()") for e in watch.events),
        "step_calls": sum(e == "optimizer.step()" for e in watch.events),
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
    return {
        **_loop_summary(watch.events),
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
