"""Probes made cheaper keep their answers: structure read on the meta device, fused Adam; a target that cannot be
built or run on the meta device is measured on the CPU as before."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.worker.probes import PROBES, structure
from grader.worker.probes.core import build_for_structure
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


def test_a_forward_that_fails_everywhere_fails_with_the_cpu_error() -> None:
    class Broken(Net):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(x, 1))  # 3 x 8 x 8 = 192 features into Linear(8, 4)

    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        PROBES["execution_trace"](Broken, input_shape=[2, 3, 8, 8])


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
