"""Probes made cheaper keep their answers: structure read on the meta device, fused Adam, no random weights drawn
where keyed values replace them or only shapes count; a target that cannot be built or run on the meta device is
measured on the CPU as before."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.worker.probes import PROBES, behaviour, cost, structure, training
from grader.worker.probes.core import build_for_structure, build_without_random_init, make_input
from grader.worker.probes.training import adam


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1), 1))


class NeedsValues(Net):
    """A constructor that reads a tensor's value cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = float(self.conv.weight.abs().max().item()) + 1.0


class DecidesOnData(Net):
    """A forward that branches on the data cannot run on the meta device."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() > -1e9):
            return super().forward(x)
        return x


def test_structure_is_built_on_the_meta_device_when_it_can_be() -> None:
    assert next(build_for_structure(Net).parameters()).device.type == "meta"
    # a constructor that needs real values is built on the CPU, as it was before
    assert next(build_for_structure(NeedsValues).parameters()).device.type == "cpu"


@pytest.mark.parametrize("cls", [Net, NeedsValues, DecidesOnData])
def test_structure_probes_answer_as_on_the_cpu(cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("describe", "param_count", "shared_modules")
    answers = {name: PROBES[name](cls) for name in names}
    monkeypatch.setattr(structure, "build_for_structure", lambda build: build())
    assert answers == {name: PROBES[name](cls) for name in names}
    counted = answers["param_count"]
    assert counted["total"] == sum(p.numel() for p in cls().parameters())
    assert counted["by_type"] == {"Conv2d": 216, "BatchNorm2d": 16, "Linear": 36}


@pytest.mark.parametrize("cls", [Net, NeedsValues, DecidesOnData])
def test_execution_trace_is_the_cpu_trace(cls: type) -> None:
    cpu = structure._execution_trace(cls, [2, 3, 8, 8], "eval", on_meta=False)
    assert PROBES["execution_trace"](cls, input_shape=[2, 3, 8, 8]) == cpu
    assert [row["type"] for row in cpu["layers"]] == ["Conv2d", "BatchNorm2d", "Linear"]


@pytest.mark.parametrize("cls", [Net, NeedsValues, DecidesOnData])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_forward_shape_is_the_cpu_shape(cls: type, mode: str) -> None:
    cpu = behaviour._forward_shape(cls, [2, 3, 8, 8], mode, on_meta=False)
    assert PROBES["forward_shape"](cls, input_shape=[2, 3, 8, 8], mode=mode) == cpu == {"shape": [2, 4], "dtype": "float32"}


def test_forward_shape_runs_on_the_meta_device_when_it_can(monkeypatch: pytest.MonkeyPatch) -> None:
    devices: list[str] = []
    monkeypatch.setattr(behaviour, "call", lambda model, x: (devices.append(x.device.type), model(x))[1])
    PROBES["forward_shape"](Net, input_shape=[2, 3, 8, 8])
    PROBES["forward_shape"](DecidesOnData, input_shape=[2, 3, 8, 8])
    assert devices == ["meta", "meta", "cpu"]   # a forward that branches on the data runs again on the CPU


def test_a_forward_that_fails_everywhere_fails_with_the_cpu_error() -> None:
    class Broken(Net):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(x, 1))  # 3 x 8 x 8 = 192 features into Linear(8, 4)

    for name in ("execution_trace", "forward_shape"):
        with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
            PROBES[name](Broken, input_shape=[2, 3, 8, 8])


def test_fused_adam_takes_the_steps_plain_adam_takes() -> None:
    torch.manual_seed(0)
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(4, 3, 8, 8), torch.arange(4)
    fused, plain = adam(a.parameters(), 1e-2), torch.optim.Adam(b.parameters(), lr=1e-2)
    assert fused.defaults["fused"]
    for _ in range(5):
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6)


def test_adam_without_a_fused_kernel_for_the_parameters_is_plain_adam() -> None:
    params = [nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.complex64))]
    optimizer = adam(params, 1e-3)  # the fused kernel takes real tensors only, and says so only at the first step
    assert not optimizer.defaults.get("fused")
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()


class CountsBackwards(Net):
    """Net, counting the backward passes that reach its first layer; ``poison_after`` makes later outputs NaN."""

    backwards = 0

    def __init__(self, poison_after: int | None = None) -> None:
        super().__init__()
        self.poison_after, self.forwards = poison_after, 0
        self.conv.weight.register_hook(lambda _: type(self)._count())

    @classmethod
    def _count(cls) -> None:
        cls.backwards += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forwards += 1
        out = super().forward(x)
        return out * float("nan") if self.poison_after is not None and self.forwards > self.poison_after else out


def plain_overfit_losses(model: nn.Module, shape: list[int], steps: int, lr: float, target: float) -> list[float]:
    """The overfitting loop written out in full: a backward pass for every loss, the last one included."""
    torch.manual_seed(0)
    x, y = make_input(shape, seed=0, dtype=torch.float32), torch.arange(shape[0]) % 4
    optimizer, losses = adam(model.parameters(), lr), []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]) or losses[-1] < target:
            break
        optimizer.step()
    return losses


@pytest.mark.parametrize(("target", "poison_after", "stops_at"), [
    (1.2, None, "target"),   # stops early: the loss falls below the target
    (0.0, None, "steps"),    # never reaches the target: every step taken
    (0.0, 3, "nan"),         # the loss turns NaN on the fourth forward
    (99.0, None, "first"),   # the first loss is already below the target
])
def test_overfit_answers_as_the_plain_loop_without_a_last_backward(target: float, poison_after: int | None,
                                                                    stops_at: str) -> None:
    shape, steps, lr = [4, 3, 8, 8], 12, 0.05

    def build() -> nn.Module:
        torch.manual_seed(5)
        return CountsBackwards(poison_after)

    CountsBackwards.backwards = 0
    want = plain_overfit_losses(build(), shape, steps, lr, target)
    plain_backwards, CountsBackwards.backwards = CountsBackwards.backwards, 0
    got = training.overfit(build, shape, steps=steps, lr=lr, num_classes=4, target_loss=target)
    assert np.array_equal(got["losses"], np.array(want), equal_nan=True)
    assert got["without_grad"] == []
    expected_len = {"target": (2, steps - 1), "steps": (steps, steps), "nan": (4, 4), "first": (1, 1)}[stops_at]
    assert expected_len[0] <= len(want) <= expected_len[1]
    # the backward of the loss the loop stops on feeds no step; the first loss's backward is kept (it finds
    # the parameters that get no gradient), and a loop that takes every step uses every backward
    assert CountsBackwards.backwards == plain_backwards - (stops_at in ("target", "nan"))


class WithDropout(Net):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.3)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")  # a student's own init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1), 1)))


def test_a_build_without_random_init_draws_nothing_and_writes_zeros() -> None:
    before = {name: getattr(nn.init, name) for name in ("kaiming_uniform_", "uniform_", "kaiming_normal_")}
    state = torch.get_rng_state()
    model = build_without_random_init(WithDropout)
    assert torch.equal(torch.get_rng_state(), state)
    assert not model.conv.weight.any() and not model.fc.weight.any() and not model.fc.bias.any()
    assert bool((model.bn.weight == 1).all())  # deterministic fills are left as they are
    assert {name: getattr(nn.init, name) for name in before} == before


def test_init_arguments_are_still_checked_without_random_init() -> None:
    class BadInit(Net):
        def __init__(self) -> None:
            super().__init__()
            nn.init.kaiming_normal_(self.conv.weight, mode="fan_mid")

    with pytest.raises(ValueError) as plain_error:
        BadInit()
    with pytest.raises(ValueError) as error:
        build_without_random_init(BadInit)
    assert str(error.value) == str(plain_error.value)


KEYED_OR_SHAPE = [("keyed_forward", {"input_shape": [2, 3, 8, 8], "mode": "train"}),
                  ("gradient_flow", {"input_shape": [2, 3, 8, 8]}),
                  ("batch_independence", {"input_shape": [3, 3, 8, 8]}),
                  ("dropout_profile", {"input_shape": [2, 3, 8, 8]}),
                  ("stochasticity", {"input_shape": [2, 3, 8, 8]}),
                  ("logits_check", {"input_shape": [2, 3, 8, 8]}),
                  ("forward_shape", {"input_shape": [2, 3, 8, 8]}),
                  ("anatomy", {"input_shape": [2, 3, 8, 8]}),
                  ("flops", {"input_shape": [1, 3, 8, 8]})]


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "shape"):
        return bool((a == b).all())
    return a == b


@pytest.mark.parametrize("name,params", KEYED_OR_SHAPE, ids=[n for n, _ in KEYED_OR_SHAPE])
def test_probes_that_overwrite_or_ignore_the_weights_answer_as_with_random_init(
        name: str, params: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    skipped = PROBES[name](WithDropout, **params)
    for module in (behaviour, cost, structure):
        monkeypatch.setattr(module, "build_without_random_init", lambda build: build())
    drawn = PROBES[name](WithDropout, **params)
    assert _same(skipped, drawn), (skipped, drawn)


# --------------------------------------------------------------------------- FLOPs without batch norm's decomposition

class BatchNormNet(nn.Module):
    """Batch norm in each of the ways a submission calls it, between the ops FLOPs are counted for."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.bn_no_stats = nn.BatchNorm2d(8, track_running_stats=False)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn_no_stats(F.relu(self.bn(self.conv(x))))
        y = F.batch_norm(y, torch.zeros(8, device=x.device), torch.ones(8, device=x.device), training=False)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1) @ torch.eye(8, device=x.device))


def _counts(counter_factory, model: nn.Module, train: bool, device: str) -> tuple[int, dict]:
    model = model.to(device).train(train)
    with torch.no_grad(), counter_factory() as counter:
        model(torch.zeros(2, 3, 8, 8, device=device))
    return counter.get_total_flops(), {k: dict(v) for k, v in counter.get_flop_counts().items()}


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_the_flop_counter_counts_what_flop_counter_mode_counts(train: bool, device: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    import torchvision

    for model in (BatchNormNet(), torchvision.models.resnet18(num_classes=10)):
        plain = _counts(lambda: FlopCounterMode(display=False), model, train, device)
        ours = _counts(cost.flop_counter, model, train, device)
        assert plain[0] > 0
        assert ours == plain


def test_the_flop_counter_does_not_decompose_batch_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    decomposed: list[str] = []
    original = torch._ops.OpOverload.decompose

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        decomposed.append(str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch._ops.OpOverload, "decompose", spy)
    for train in (False, True):
        _counts(lambda: FlopCounterMode(display=False), BatchNormNet(), train, "meta")
    assert any("batch_norm" in op for op in decomposed)  # what the plain counter does, costing 2-3 ms a call
    decomposed.clear()
    for train in (False, True):
        _counts(cost.flop_counter, BatchNormNet(), train, "meta")
    assert decomposed and not any("batch_norm" in op for op in decomposed)


# --------------------------------------------------------------------------- float32 where only a property is read

class LeaksInEval(Net):
    """Batch statistics in eval mode: one sample's output depends on the others."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(self.conv(x), None, None, self.bn.weight, self.bn.bias, training=True)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(y), 1), 1))


class DropoutAlwaysOn(Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(super().forward(x), 0.5, training=True)


class UnusedLayer(Net):
    def __init__(self) -> None:
        super().__init__()
        self.spare = nn.Linear(8, 8)


class SoftmaxOut(Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(super().forward(x), dim=1)


class ChangesItsInput(Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.relu_()
        return super().forward(x)


PROPERTY_PROBES = [("gradient_flow", {"input_shape": [2, 3, 8, 8]}),
                   ("batch_independence", {"input_shape": [3, 3, 8, 8]}),
                   ("dropout_profile", {"input_shape": [2, 3, 8, 8]}),
                   ("stochasticity", {"input_shape": [2, 3, 8, 8]}),
                   ("logits_check", {"input_shape": [2, 3, 8, 8]}),
                   ("input_mutation", {"input_shape": [2, 3, 8, 8]})]
PROPERTY_CASES = [Net, WithDropout, LeaksInEval, DropoutAlwaysOn, UnusedLayer, SoftmaxOut, ChangesItsInput]


def _same_property(a: object, b: object, random: bool) -> bool:
    """Equal, except that a float has to be zero on both sides or neither, and agree to float32's precision
    unless the forward draws random numbers (float32 and float64 draw different dropout masks)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_property(a[k], b[k], random) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_property(x, y, random) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (a == 0) == (b == 0) and (random or a == pytest.approx(b, rel=1e-4))
    return a == b


def _answer(name: str, cls: type, params: dict) -> object:
    try:
        return PROBES[name](cls, **params)
    except Exception as e:  # noqa: BLE001 - a failing forward is an answer too
        return {"raised": f"{type(e).__name__}: {e}"}


@pytest.mark.parametrize("name,params", PROPERTY_PROBES, ids=[n for n, _ in PROPERTY_PROBES])
def test_property_probes_answer_in_float32_as_in_float64(name: str, params: dict,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert behaviour.PROPERTY_DTYPE == torch.float32
    answers = {cls.__name__: _answer(name, cls, params) for cls in PROPERTY_CASES}
    monkeypatch.setattr(behaviour, "PROPERTY_DTYPE", torch.float64)
    for cls in PROPERTY_CASES:
        random = cls in (WithDropout, DropoutAlwaysOn)
        assert _same_property(answers[cls.__name__], _answer(name, cls, params), random), cls.__name__
    # the cases differ where the probe looks, so the comparison above compares something
    assert len({repr(a) for a in answers.values()}) > 1


# --------------------------------------------------------------------------- batch norm on the meta device

def _meta_bn_args(shape: tuple, dtype: torch.dtype, affine: bool, stats: bool, training: bool,
                  channels_last: bool, stat_dtype: torch.dtype | None = None, channels: int | None = None) -> tuple:
    x = torch.empty(shape, dtype=dtype, device="meta")
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    c = shape[1] if channels is None else channels
    per_channel = (lambda: torch.empty(c, dtype=stat_dtype or dtype, device="meta"))
    return (x, per_channel() if affine else None, per_channel() if affine else None,
            per_channel() if stats else None, per_channel() if stats else None, training, 0.1, 1e-5)


def _described(out: tuple) -> list:
    return [(tuple(t.shape), t.dtype, t.stride(), t.device.type) for t in out]


FAST_CASES = [dict(shape=s, dtype=d, affine=a, stats=st, training=tr, channels_last=cl)
              for s in [(2, 8, 5, 5), (2, 8), (3, 4, 6), (1, 3, 2, 2, 2)]
              for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16)
              for a in (True, False) for st in (True, False) for tr in (True, False)
              for cl in ((False, True) if len(s) == 4 else (False,))
              if st or tr]


@pytest.mark.parametrize("case", FAST_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_meta_batch_norm_is_made_as_its_meta_kernel_makes_it(case: dict) -> None:
    from grader.worker.probes.core import _meta_batch_norm

    args = _meta_bn_args(**case)
    made = _meta_batch_norm(args, {})
    assert made is not None
    assert _described(made) == _described(torch.ops.aten.native_batch_norm.default(*args))


@pytest.mark.parametrize("odd", [dict(channels=4), dict(stat_dtype=torch.float64), dict(stats=False, training=False)],
                         ids=["wrong-channels", "mixed-dtypes", "eval-without-stats"])
def test_meta_batch_norm_leaves_other_cases_to_the_kernel(odd: dict) -> None:
    from grader.worker.probes.core import _meta_batch_norm

    case = dict(shape=(2, 8, 5, 5), dtype=torch.float32, affine=True, stats=True, training=False, channels_last=False)
    args = _meta_bn_args(**{**case, **odd})
    assert _meta_batch_norm(args, {}) is None
    x = args[0]
    assert _meta_batch_norm((x[:, :, ::2], *args[1:]), {}) is None   # not dense


def test_meta_probes_answer_as_with_the_batch_norm_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    from grader.worker.probes import core

    class WrongChannels(Net):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm2d(4)   # 8 channels come in: the kernel's error, on the meta device and the CPU

    builds = [Net, WrongChannels, lambda: torchvision.models.resnet18(num_classes=10)]
    calls = [("forward_shape", {"input_shape": [2, 3, 16, 16]}), ("forward_shape", {"input_shape": [2, 3, 16, 16], "mode": "train"}),
             ("meta_forward", {"input_shape": [2, 3, 16, 16]}), ("execution_trace", {"input_shape": [2, 3, 16, 16]}),
             ("meta_cost", {"input_shape": [1, 3, 16, 16]})]
    answers = [_answer(name, build, params) for name, params in calls for build in builds]
    made: list[int] = []
    original = core._meta_batch_norm
    monkeypatch.setattr(core, "_meta_batch_norm", lambda args, kwargs: made.append(1) or original(args, kwargs))
    assert [_answer(name, build, params) for name, params in calls for build in builds] == answers
    assert made   # the fast path ran
    monkeypatch.setattr(core, "_meta_batch_norm", lambda args, kwargs: None)
    assert [_answer(name, build, params) for name, params in calls for build in builds] == answers


class Float64Model(Net):
    def __init__(self) -> None:
        super().__init__()
        self.double()


class Float64Linear(Net):
    """A float64 layer the meta device would let a float32 input through (the CPU refuses it)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4, dtype=torch.float64)


@pytest.mark.parametrize("cls", [Float64Model, Float64Linear])
def test_forward_shape_of_a_model_not_all_float32_is_the_cpu_answer(cls: type) -> None:
    with pytest.raises(RuntimeError) as cpu_error:
        behaviour._forward_shape(cls, [2, 3, 8, 8], "eval", on_meta=False)
    with pytest.raises(RuntimeError) as error:
        PROBES["forward_shape"](cls, input_shape=[2, 3, 8, 8])
    assert str(error.value) == str(cpu_error.value)


def test_forward_shape_under_a_changed_default_dtype_is_the_cpu_answer() -> None:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)   # what a submission may do at import
    try:
        with pytest.raises(RuntimeError, match="should be the same"):
            PROBES["forward_shape"](Net, input_shape=[2, 3, 8, 8])
    finally:
        torch.set_default_dtype(previous)
