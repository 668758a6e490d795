"""The wrong versions of the Day 9 blocks that ``catalogue`` names mistakes with, as modules.

Apart from ``catalogue`` so that grading imports torch on the trusted side only to
compute a wrong version's output that is neither memoised nor in the reference's
cache: each class is the block with one catalogued change (``kind``), or two joined
by "+" where the catalogue says the block's mistakes combine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Residual(nn.Module):
    """The block with one catalogued change, or two joined by "+" (a structural one and another)."""

    def __init__(self, kind: str, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.kind = kind
        kinds = set(kind.split("+"))
        self.kinds = kinds

        def norm(c: int) -> nn.Module:
            if "instance_norm" in kinds:
                return nn.InstanceNorm2d(c)
            if "instance_norm_affine" in kinds:
                return nn.InstanceNorm2d(c, affine=True)
            if "batchnorm1d" in kinds:
                return nn.BatchNorm1d(c)
            if "bn_batch_stats" in kinds:
                return nn.BatchNorm2d(c, track_running_stats=False)
            if "bn_momentum" in kinds:
                return nn.BatchNorm2d(c, momentum=0.9)
            return nn.BatchNorm2d(c)

        bias = "conv_bias" in kinds
        main_bias = bias or "main_conv_bias" in kinds
        s1, s2 = (1, stride) if "stride_on_conv2" in kinds else (stride, 1)
        self.c1 = nn.Conv2d(cin, cout, 3, s1, 1, bias=main_bias)
        self.n1 = norm(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, s2, 1, bias=main_bias)
        self.n2 = norm(cout)
        rules = {"projection_channels_only": cin != cout, "projection_stride_only": stride != 1,
                 "projection_never": False, "projection_always": True}
        needed = next((rules[k] for k in sorted(kinds) if k in rules), stride != 1 or cin != cout)
        if needed:
            k = 3 if "projection_3x3" in kinds else 1
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias)]
            if "projection_no_bn" not in kinds:
                layers.append(norm(cout))
            self.short: nn.Module = nn.Sequential(*layers)
        else:
            self.short = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kinds
        act = F.relu6 if "relu6" in k else F.relu
        if "relu_on_input" in k:
            x = F.relu(x)
        s = self.short(x)
        h = self.n1(act(self.c1(x))) if "bn_after_relu" in k else act(self.n1(self.c1(x)))
        if "add_before_bn2" in k:
            return act(self.n2(self.c2(h) + s))
        m = (self.n1 if "bn1_twice" in k else self.n2)((self.c1 if "conv1_twice" in k else self.c2)(h))
        if "relu_before_add" in k:
            return act(act(m) + s)
        if "relu_before_add_no_final" in k:
            return act(m) + s
        if "no_final_relu" in k:
            return m + s
        if "no_skip" in k:
            return act(m)
        if "skip_twice" in k:
            return act(m + 2 * s)
        if "shortcut_called_twice" in k:
            return act(m + s + self.short(x))
        return act(m + s)


class _Separable(nn.Module):
    def __init__(self, kind: str, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.kind = kind

        def norm(c: int) -> nn.Module:
            return nn.InstanceNorm2d(c) if kind == "instance_norm" else nn.BatchNorm2d(c)

        dw_bias = kind in ("conv_bias", "depthwise_bias")
        pw_bias = kind in ("conv_bias", "pointwise_bias")
        dw_out = cout if kind == "channel_multiplier" else cin
        groups = 1 if kind == "no_groups" else cin
        dw_stride, pw_stride = (1, stride) if kind == "stride_on_pointwise" else (stride, 1)
        pw_kernel = 3 if kind == "pointwise_3x3" else 1
        self.dw = nn.Conv2d(cin, dw_out, 3, dw_stride, 1, groups=groups, bias=dw_bias)
        self.n1 = nn.Identity() if kind == "no_bn_depthwise" else norm(dw_out)
        self.pw = nn.Conv2d(dw_out, cout, pw_kernel, pw_stride, pw_kernel // 2, bias=pw_bias)
        self.n2 = nn.Identity() if kind == "no_bn_pointwise" else norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kind
        act = F.relu6 if k == "relu6" else F.relu
        first = self.n1(act(self.dw(x))) if k == "bn_after_relu" else self.n1(self.dw(x))
        if k not in ("bn_after_relu", "no_relu_depthwise"):
            first = act(first)
        second = self.n2(act(self.pw(first))) if k == "bn_after_relu" else self.n2(self.pw(first))
        return second if k in ("no_relu_pointwise", "bn_after_relu") else act(second)


class _Inception(nn.Module):
    def __init__(self, kind: str, cin: int, c1: int, r3: int, c3: int, r5: int, c5: int, pp: int) -> None:
        super().__init__()
        self.kind = kind
        bias = kind != "no_bias"
        self.b1 = nn.Conv2d(cin, c1, 1, bias=bias)
        self.r3 = nn.Identity() if kind == "no_reduce_3x3" else nn.Conv2d(cin, r3, 1, bias=bias)
        self.b3 = nn.Conv2d(cin if kind == "no_reduce_3x3" else r3, c3, 3, padding=1, bias=bias)
        self.r5 = nn.Identity() if kind == "no_reduce_5x5" else nn.Conv2d(cin, r5, 1, bias=bias)
        k5 = 3 if kind == "five_as_three" else 5
        self.b5 = nn.Conv2d(cin if kind == "no_reduce_5x5" else r5, c5, k5, padding=k5 // 2, bias=bias)
        self.pool = (nn.AvgPool2d(3, 1, 1) if kind == "avg_pool" else nn.MaxPool2d(3, 1, 1))
        self.bp = nn.Identity() if kind == "no_pool_projection" else nn.Conv2d(cin, pp, 1, bias=bias)

    def act(self, where: str, t: torch.Tensor) -> torch.Tensor:
        if self.kind == f"no_relu_{where}" or (self.kind == "no_pool_projection" and where == "p"):
            return t
        if self.kind == "no_reduce_3x3" and where == "3r" or self.kind == "no_reduce_5x5" and where == "5r":
            return t
        return F.relu6(t) if self.kind == "relu6" else F.relu(t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act("1", self.b1(x))
        b = self.act("3", self.b3(self.act("3r", self.r3(x))))
        c = self.act("5", self.b5(self.act("5r", self.r5(x))))
        d = self.act("p", self.bp(self.pool(x)))
        return torch.cat([a, b, c, d], dim=1)


class _VGG(nn.Module):
    def __init__(self, kind: str, cin: int, cout: int, n: int) -> None:
        super().__init__()
        self.kind = kind
        layers: list[nn.Module] = []
        c = cin
        for i in range(n):
            layers.append(nn.Conv2d(c, cout, 3, padding=0 if kind == "padding0" else 1, bias=kind != "no_bias"))
            if kind == "batchnorm":
                layers.append(nn.BatchNorm2d(cout))
            if not (kind == "no_relu_last" and i == n - 1):
                layers.append(nn.ReLU6() if kind == "relu6" else nn.ReLU())
            if kind == "pool_every_conv" and i < n - 1:
                layers.append(nn.MaxPool2d(2, 2))
            if kind != "in_channels_not_updated":
                c = cout
        layers.append(nn.AvgPool2d(2, 2) if kind == "avg_pool" else nn.MaxPool2d(2, 2))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
