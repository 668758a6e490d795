"""Shared checks for the Inception, MobileNet, practice-task and scaling tests.

Comparisons of probe results, parameter counts explained by a catalogue of
likely mistakes, a name-agnostic diagnosis of why two forwards differ (layers
that ran, ATen ops, concatenation axis), layer tables for the report, and the
GPU skips. Probe results are memoised per submission, so tests that need the
same measurement share one request to the worker.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from typing import Any, Iterable

import numpy as np
import pytest

from grader.testing import Built, Mistake, SubmissionError, check, commas, cuda_available, cuda_not_available

# --------------------------------------------------------------------------- probes, once per submission

_MEMO: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def run(built: Built, name: str, **params: Any) -> dict[str, Any]:
    """``built.probe(name, **params)``, asked once per submission (an error is replayed, a timeout is not kept)."""
    memo = _MEMO.setdefault(built.impl, {})
    key = repr((built.target, built.args, sorted(built.kwargs.items()), built.construct, built.stand_ins, name,
                sorted(params.items())))
    if key not in memo:
        try:
            memo[key] = ("ok", built.probe(name, **params))
        except SubmissionError as e:
            if e.kind == "timeout":
                raise
            memo[key] = ("error", e)
    state, value = memo[key]
    if state == "error":
        raise value
    return value


def run_or_explain(student: Any, reference: Any, target: str, args: tuple, name: str, input_shape: list[int],
                   **params: Any) -> dict[str, Any]:
    """Run a forward-based probe; when the student's forward raises, explain the crash from its anatomy."""
    try:
        return run(student.build(target, *args), name, input_shape=input_shape, **params)
    except SubmissionError as e:
        if e.kind != "exception":
            raise
        mine = run(student.build(target, *args), "anatomy", input_shape=input_shape)
        theirs = run(reference.build(target, *args), "anatomy", input_shape=input_shape)
        hints = diagnose(mine, theirs)
        raise Mistake(f"{call_text(target, args)} raised an error on an input of shape {shape_text(input_shape)}",
                      expected="a forward pass without errors", found=e.message[:600],
                      hint=" ".join(hints) if hints else None, cause=diagnosed_cause(mine, target)) from None


# --------------------------------------------------------------------------- text

def call_text(target: str, args: Iterable[Any]) -> str:
    return f"{target}({', '.join(repr(a) for a in args)})"


def shape_text(shape: Iterable[int] | None) -> str:
    if shape is None:
        return "no output"
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def signed(n: int) -> str:
    return f"{n:+,}"


# --------------------------------------------------------------------------- outputs

def max_difference(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want))) if got.size and got.shape == want.shape else float("inf")


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-6, atol: float = 1e-8) -> bool:
    if got.shape != want.shape:
        return False
    scale = float(np.max(np.abs(want))) if want.size else 1.0
    return bool(np.allclose(got, want, rtol=rtol, atol=max(atol, 1e-9 * scale)))


def same_function(student: Any, reference: Any, target: str, args: tuple, input_shape: list[int],
                  mode: str = "eval", artifacts: dict | None = None, **params: Any) -> None:
    """Keyed-weight float64 outputs must agree; on a mismatch, say which layers or ops differ."""
    got = run_or_explain(student, reference, target, args, "keyed_forward", input_shape, mode=mode, **params)["output"]
    want = run(reference.build(target, *args), "keyed_forward", input_shape=input_shape, mode=mode, **params)["output"]
    if close(got, want):
        return
    mine = run(student.build(target, *args), "anatomy", input_shape=input_shape, mode=mode)
    theirs = run(reference.build(target, *args), "anatomy", input_shape=input_shape, mode=mode)
    if artifacts is not None:
        record_layer_table(artifacts, target, mine, theirs)
    hints = diagnose(mine, theirs)
    where = f"{call_text(target, args)} in {mode} mode on an input of shape {shape_text(input_shape)}"
    if got.shape != want.shape:
        raise Mistake(f"{where}: the output has the wrong shape", expected=shape_text(want.shape),
                      found=shape_text(got.shape), hint=" ".join(hints) or None, cause=diagnosed_cause(mine, target))
    if not hints and mode == "train":
        hints = ["The outputs agree in eval mode but not in train mode, where BatchNorm uses the statistics of "
                 "the batch it sees: check which convolution has the stride (the depthwise 3x3 one) and that "
                 "every BatchNorm sits right after its convolution."]
    raise Mistake(f"{where}: the output differs from the specified computation "
                  f"(largest difference {max_difference(got, want):.3g}, with the same weights in both)",
                  expected=f"values matching the specification (mean |y| {np.abs(want).mean():.4g})",
                  found=f"mean |y| {np.abs(got).mean():.4g}",
                  hint=" ".join(hints) if hints else "The layers that ran are the specification's; their order or "
                                                     "what is added or joined differs.",
                  cause=diagnosed_cause(mine, target))


# --------------------------------------------------------------------------- diagnosis from two anatomies

def conv_text(row: dict[str, Any]) -> str:
    k = row.get("kernel", ["?", "?"])
    pad = row.get("padding", [0, 0])
    pad = pad[0] if isinstance(pad, list) else pad
    text = f"Conv2d {k[0]}x{k[1]} {row.get('in_channels')}->{row.get('out_channels')}"
    extras = []
    stride = row.get("stride", [1, 1])[0]
    if stride != 1:
        extras.append(f"stride {stride}")
    extras.append(f"padding {pad}")
    if row.get("groups", 1) != 1:
        extras.append(f"groups {row['groups']}")
    extras.append("with bias" if row.get("bias") else "no bias")
    return f"{text} ({', '.join(extras)})"


def layer_text(row: dict[str, Any]) -> str:
    t = row.get("type", "?")
    if t == "Conv2d":
        return conv_text(row)
    if t in ("MaxPool2d", "AvgPool2d"):
        return f"{t}({row['kernel'][0]}, stride {row['stride'][0]}, padding {row['padding'][0]})"
    if t == "Linear":
        return f"Linear({row.get('in_features')} -> {row.get('out_features')})"
    if "BatchNorm" in t:
        return f"{t}({row.get('num_features')})"
    if "Dropout" in t:
        return f"{t}(p={row.get('p')})"
    return t


def _multiset_diff(mine: list[str], theirs: list[str], limit: int = 3) -> tuple[list[str], list[str]]:
    a, b = Counter(mine), Counter(theirs)
    missing = list((b - a).elements())[:limit]
    extra = list((a - b).elements())[:limit]
    return missing, extra


def diagnosed_cause(mine: dict[str, Any], target: str) -> str | None:
    """The cause of a failure whose anatomy shows a recognisable mistake (padding, pooling, concatenation axis)."""
    for r in mine.get("layers", []):
        if r.get("type") == "Conv2d":
            k, pad = r["kernel"][0], r["padding"][0] if isinstance(r["padding"], list) else None
            if isinstance(pad, int) and r["stride"][0] == 1 and k in (3, 5) and pad != k // 2:
                return f"{target}.branch_padding"
        if r.get("type") == "MaxPool2d" and r["kernel"][0] == 3 and r["stride"][0] == 1 and r["padding"][0] != 1:
            return f"{target}.pool_padding"
    if "dimension 0" in (mine.get("error") or "") or 0 in mine.get("cat_dims", []):
        return f"{target}.cat_dim"
    return None


def diagnose(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Likely causes, from what ran in the student's forward and the reference's (never used to gate)."""
    hints: list[str] = []
    rows = mine.get("layers", [])
    ops, ref_ops = mine.get("ops", {}), theirs.get("ops", {})
    error = mine.get("error") or ""
    convs = [r for r in rows if r.get("type") == "Conv2d"]
    # padding that changes the spatial size of a stride-1 branch
    for r in convs:
        k = r["kernel"][0]
        pad = r["padding"][0] if isinstance(r["padding"], list) else None
        if isinstance(pad, int) and r["stride"][0] == 1 and k in (3, 5) and pad != k // 2:
            hints.append(f"A {k}x{k} convolution has padding={pad}; it needs padding={k // 2} to keep the height and width.")
            break
    for r in rows:
        if r.get("type") == "MaxPool2d" and r["kernel"][0] == 3 and r["stride"][0] == 1 and r["padding"][0] != 1:
            hints.append("MaxPool2d(3, stride=1) needs padding=1 to keep the height and width, like the other branches.")
            break
    if "dimension 0" in error or 0 in mine.get("cat_dims", []):
        hints.append("torch.cat must join the branches along dim=1 (the channels), not dim=0 (the batch).")
    elif "Sizes of tensors must match" in error and not hints:
        hints.append("The branches produce different heights or widths, so they cannot be concatenated: "
                     "every branch must keep the input's spatial size.")
    if ops.get("avg_pool2d", 0) > ref_ops.get("avg_pool2d", 0) and ops.get("max_pool2d", 0) < ref_ops.get("max_pool2d", 0):
        hints.append("Average pooling is used where the specification has max pooling (MaxPool2d).")
    if mine.get("ok") and theirs.get("ok"):
        if ops.get("hardtanh", 0) > ref_ops.get("hardtanh", 0) and ops.get("relu", 0) < ref_ops.get("relu", 0):
            hints.append(f"{ops['hardtanh']} clipped activations (ReLU6 or hardtanh) ran where ReLUs are expected.")
        elif ops.get("relu", 0) < ref_ops.get("relu", 0):
            hints.append(f"{ops.get('relu', 0)} ReLUs ran where {ref_ops['relu']} are expected: a ReLU is missing "
                         "(every convolution here is followed by one).")
        elif ops.get("relu", 0) > ref_ops.get("relu", 0):
            hints.append(f"{ops.get('relu', 0)} ReLUs ran where {ref_ops.get('relu', 0)} are expected: there is an extra ReLU.")
        if ops.get("batch_norm", 0) != ref_ops.get("batch_norm", 0):
            hints.append(f"{ops.get('batch_norm', 0)} BatchNorm layers ran where {ref_ops.get('batch_norm', 0)} are expected.")
        if ops.get("dropout", 0) + ops.get("bernoulli", 0) > ref_ops.get("dropout", 0) + ref_ops.get("bernoulli", 0):
            hints.append("Dropout is active in eval mode: use nn.Dropout (it follows model.eval()) or "
                         "F.dropout(x, p, training=self.training).")
        if ops.get("softmax", 0) + ops.get("log_softmax", 0) > ref_ops.get("softmax", 0) + ref_ops.get("log_softmax", 0):
            hints.append("The forward applies a softmax; return the raw logits (CrossEntropyLoss applies log-softmax itself).")
    norms = sorted({t for t in mine.get("module_types", {}) if "Norm" in t} - set(theirs.get("module_types", {})))
    if norms:
        hints.append(f"{', '.join(norms)} is used where the specification has "
                     f"{', '.join(sorted(t for t in theirs.get('module_types', {}) if 'Norm' in t)) or 'no normalisation'}.")
    ref_rows = theirs.get("layers", [])
    missing, extra = _multiset_diff([layer_text(r) for r in rows if r.get("type") in ("Conv2d", "Linear", "MaxPool2d", "AvgPool2d")],
                                    [layer_text(r) for r in ref_rows if r.get("type") in ("Conv2d", "Linear", "MaxPool2d", "AvgPool2d")])
    if missing or extra:
        parts = []
        if missing:
            parts.append("expected but not run: " + "; ".join(missing))
        if extra:
            parts.append("run but not expected: " + "; ".join(extra))
        hints.append("Layers that differ from the specification (" + ". ".join(parts) + ").")
    if not hints and mine.get("ok") and theirs.get("ok"):
        changed = [f"{op} {ops.get(op, 0)} time(s) where {ref_ops.get(op, 0)} expected"
                   for op in sorted(set(ops) | set(ref_ops)) if ops.get(op, 0) != ref_ops.get(op, 0)]
        if changed:
            hints.append("The operations that ran differ from the specification's: " + "; ".join(changed) + ".")
    return hints


# --------------------------------------------------------------------------- layer tables for the report

def table_rows(anatomy: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in anatomy.get("layers", []):
        if r.get("type") not in ("Conv2d", "Linear") and "BatchNorm" not in r.get("type", ""):
            continue
        kernel = r.get("kernel")
        rows.append({"type": r["type"], "kernel": f"{kernel[0]}x{kernel[1]}" if kernel else "",
                     "stride": str(r["stride"][0]) if r.get("stride") else "",
                     "groups": r.get("groups", 1) if r["type"] == "Conv2d" else None,
                     "out_shape": shape_text(r.get("out_shape", [])[1:]), "params": r.get("params", 0)})
    return rows


def record_layer_table(artifacts: dict, target: str, mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    student, reference = table_rows(mine), table_rows(theirs)
    first = next((i for i, (a, b) in enumerate(zip(student, reference)) if a != b), None)
    if first is None and len(student) != len(reference):
        first = min(len(student), len(reference))
    artifacts.setdefault("layer_tables", {})[target] = {"student": student, "reference": reference,
                                                        "first_divergence": first}


def record_comparison(artifacts: dict, student: Any, reference: Any, target: str, label: str) -> None:
    """One row of the report's architecture comparison (never affects the grade)."""
    try:
        mine = run(student.build(target), "meta_cost", input_shape=[1, 3, 32, 32])
        ms = run(student.build(target), "inference_time", input_shape=[1, 3, 32, 32], repeats=3)["ms"]
    except (SubmissionError, Mistake):
        return
    theirs = run(reference.build(target), "meta_cost", input_shape=[1, 3, 32, 32])
    rows = artifacts.setdefault("comparison", [])
    rows[:] = [r for r in rows if r.get("model") != label]
    rows.append({"model": label, "params": mine["params"], "ref_params": theirs["params"], "inference_ms": ms,
                 "flops": mine.get("flops"), "ref_flops": theirs.get("flops")})


# --------------------------------------------------------------------------- parameter counts and their likely causes

def conv_params(cin: int, cout: int, k: int, bias: bool = True, groups: int = 1) -> int:
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def inception_params(cin: int, c1: int, r3: int, c3: int, r5: int, c5: int, pp: int) -> int:
    return (conv_params(cin, c1, 1) + conv_params(cin, r3, 1) + conv_params(r3, c3, 3) + conv_params(cin, r5, 1)
            + conv_params(r5, c5, 5) + conv_params(cin, pp, 1))


def inception_mistakes(cin: int, c1: int, r3: int, c3: int, r5: int, c5: int, pp: int) -> dict[str, int]:
    """Parameter deltas of realistic mistakes in one InceptionModule(cin, c1, r3, c3, r5, c5, pp)."""
    no_reduce3 = conv_params(cin, c3, 3) - conv_params(cin, r3, 1) - conv_params(r3, c3, 3)
    no_reduce5 = conv_params(cin, c5, 5) - conv_params(cin, r5, 1) - conv_params(r5, c5, 5)
    m = "InceptionModule."
    return {
        "a 3x3 conv where the 5x5 branch needs 5x5": (-16 * r5 * c5, m + "branch_kernel"),
        "a 5x5 conv in the 3x3 branch": (16 * r3 * c3, m + "branch_kernel"),
        "no 1x1 projection after the max-pool (the pool branch ends in a 1x1 conv to pool_proj channels)":
            (-conv_params(cin, pp, 1), m + "no_pool_projection"),
        "no 1x1 reduction before the 3x3 conv (it must read ch3x3_reduce channels, not in_channels)":
            (no_reduce3, m + "no_reduce"),
        "no 1x1 reduction before the 5x5 conv (it must read ch5x5_reduce channels, not in_channels)":
            (no_reduce5, m + "no_reduce"),
        "no 1x1 reductions before the 3x3 and 5x5 convs": (no_reduce3 + no_reduce5, m + "no_reduce"),
        "convolutions built with bias=False (the Inception convolutions keep their bias)":
            (-(c1 + r3 + c3 + r5 + c5 + pp), m + "conv_no_bias"),
        "ch3x3 and ch5x5 swapped in the constructor": ((conv_params(r3, c5, 3) + conv_params(r5, c3, 5))
                                                       - (conv_params(r3, c3, 3) + conv_params(r5, c5, 5)),
                                                       m + "argument_order"),
    }


INCEPTION_CONFIGS = [(64, 32, 48, 64, 8, 16, 16), (128, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64)]


def simplified_inception_mistakes(num_classes: int = 10) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    per_module = [inception_mistakes(*cfg) for cfg in INCEPTION_CONFIGS]
    for name in per_module[0]:
        out[name + " (in every InceptionModule)"] = (sum(m[name][0] for m in per_module), per_module[0][name][1])
    out["the stem conv built with bias=False"] = (-64, "SimplifiedInception.stem_bias")
    out["a classifier on the 480 x 8 x 8 feature maps instead of global average pooling first"] = (
        480 * 63 * num_classes, "SimplifiedInception.no_global_pool")
    return out


def dsc_params(cin: int, cout: int, bias: bool = False) -> int:
    return conv_params(cin, cin, 3, bias, groups=cin) + 2 * cin + conv_params(cin, cout, 1, bias) + 2 * cout


def dsc_mistakes(cin: int, cout: int) -> dict[str, tuple[int, str]]:
    """Parameter deltas of realistic mistakes in one DepthwiseSeparableConv(cin, cout), with their causes."""
    multiplier = (conv_params(cin, cout, 3, False, groups=cin) + 2 * cout + conv_params(cout, cout, 1, False) + 2 * cout) \
        - dsc_params(cin, cout)
    d = "DepthwiseSeparableConv."
    return {
        "the depthwise conv has no groups (it became a full 3x3 convolution that mixes all channels)":
            (9 * cin * (cin - 1), d + "no_groups"),
        "conv bias before BatchNorm (BatchNorm's shift makes the bias redundant)": (cin + cout, d + "conv_bias"),
        "a bias on the depthwise conv before its BatchNorm": (cin, d + "conv_bias"),
        "a bias on the pointwise conv before its BatchNorm": (cout, d + "conv_bias"),
        "no BatchNorm after the depthwise conv": (-2 * cin, d + "missing_bn"),
        "no BatchNorm after the pointwise conv": (-2 * cout, d + "missing_bn"),
        "no BatchNorm2d with parameters after either conv (left out, or replaced by a normalisation without "
        "parameters such as InstanceNorm2d)": (-2 * (cin + cout), d + "wrong_norm_layer"),
        "a channel-multiplier depthwise conv (in_channels -> out_channels; the depthwise conv keeps in_channels)":
            (multiplier, d + "channel_multiplier"),
        "the pointwise conv is 3x3 instead of 1x1": (8 * cin * cout, d + "pointwise_kernel"),
    }


MOBILENET_BLOCKS = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)]
PAPER_BLOCKS = MOBILENET_BLOCKS + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]


def mobilenet_params(blocks: list[tuple[int, int, int]], num_classes: int = 10) -> int:
    return conv_params(3, 32, 3, False) + 64 + sum(dsc_params(a, b) for a, b, _ in blocks) + blocks[-1][1] * num_classes + num_classes


def mobilenet_mistakes(num_classes: int = 10) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    per_block = [dsc_mistakes(a, b) for a, b, _ in MOBILENET_BLOCKS]
    for name in per_block[0]:
        out[name + " (in every DepthwiseSeparableConv)"] = (sum(m[name][0] for m in per_block), per_block[0][name][1])
    base = mobilenet_params(MOBILENET_BLOCKS, num_classes)
    out["the paper's 13-block MobileNet instead of the lesson's 6 blocks"] = (
        mobilenet_params(PAPER_BLOCKS, num_classes) - base, "MobileNetV1.paper_layout")
    out["a 7th block (512 -> 1024) as in the paper's next stage"] = (
        dsc_params(512, 1024) + 1024 * num_classes - 512 * num_classes, "MobileNetV1.paper_layout")
    out["the stem conv built with a bias"] = (32, "MobileNetV1.stem_bias")
    out["no BatchNorm after the stem conv"] = (-64, "MobileNetV1.stem_bn")
    return out


def check_params(student: Any, reference: Any, target: str, args: tuple, mistakes: dict[str, tuple[int, str]]) -> None:
    """Exact trainable-parameter count; a mismatch is explained by layer type and, when it fits, by a likely mistake.

    ``mistakes`` maps what a mistake is to (its parameter delta, its cause name).
    """
    got = run(student.build(target, *args), "param_count")
    want = run(reference.build(target, *args), "param_count")
    if got["total"] == want["total"]:
        return
    where = call_text(target, args)
    if got["total"] == 0:
        raise Mistake(f"{where} has no parameters at all: no layer is registered", expected=commas(want["total"]),
                      found="0", hint="Layers kept in a plain Python list or dict, or built only in forward, are "
                                      "invisible to PyTorch: register them as attributes, in nn.Sequential or in "
                                      "nn.ModuleList.", cause=f"{target}.unregistered_layers")
    delta = got["total"] - want["total"]
    types = sorted(set(got["by_type"]) | set(want["by_type"]))
    by_type = [f"{t} {signed(got['by_type'].get(t, 0) - want['by_type'].get(t, 0))}" for t in types
               if got["by_type"].get(t, 0) != want["by_type"].get(t, 0)]
    likely = [(name, cause) for name, (d, cause) in mistakes.items() if d == delta and d != 0]
    by_type_text = f" ({'; '.join(by_type)} by layer type)" if by_type else ""
    if likely:
        hint = "Likely " + likely[0][0] + "."
    else:
        hint = "Compare each layer's input and output channels, kernel size and bias with the docstring."
    raise Mistake(f"{where} has {commas(got['total'])} parameters, {signed(delta)} compared with the specification",
                  expected=commas(want["total"]), found=commas(got["total"]) + by_type_text, hint=hint,
                  cause=likely[0][1] if likely else None)


# --------------------------------------------------------------------------- GPU

def need_cuda() -> None:
    """Skip (the test then carries no points) when the grading machine has no CUDA GPU."""
    if not cuda_available():
        pytest.skip("no CUDA GPU on this machine")


def cuda_result(result: dict[str, Any], student: Any) -> dict[str, Any]:
    """A worker that answers without CUDA skips the check where the run gave it no GPU, and fails it otherwise."""
    if not result.get("cuda", False):
        cuda_not_available(student, str(result.get("reason", "no GPU"))[:200])
    return result


# --------------------------------------------------------------------------- training and GPU checks of the networks

OVERFIT_BELOW = 0.25  # the lowest loss a network judged by check_overfit must reach


def check_overfit(target: str, got: dict, want: dict, artifacts: dict) -> None:
    losses = [float(v) for v in got["losses"]]
    ref = [float(v) for v in want["losses"]]
    artifacts.setdefault("loss_curves", {})[target] = {"student": losses, "reference": ref}
    check(bool(losses) and all(np.isfinite(losses)), "The training loss became NaN or infinite",
          expected="finite losses", found=", ".join(f"{v:.3g}" for v in losses[:8]),
          hint="Look for a division by zero or a missing normalisation in forward.")
    check(not got["without_grad"], "Some parameters got no gradient in the first training step",
          expected="a gradient for every parameter", found=", ".join(got["without_grad"][:5]),
          hint="Every layer created in __init__ must be used in forward.")
    best = min(losses)
    if best < OVERFIT_BELOW:
        return
    hint = "Compare your network with the docstring: a missing ReLU or a wrong layer makes it much harder to fit."
    if best > 1.45 and losses[0] < 2.4:
        hint = ("The loss stays above 1.46 = ln(1 + 9/e), the lowest cross-entropy possible when the outputs are "
                "probabilities over 10 classes: return logits (no softmax at the end); CrossEntropyLoss applies "
                "log-softmax itself.")
    raise Mistake(f"{target} did not overfit one small batch of images in {len(losses)} Adam steps",
                  expected=f"loss below {OVERFIT_BELOW:g} (the reference reaches {ref[-1]:.3f} after {len(ref)} steps)",
                  found=f"loss {losses[0]:.3f} -> best {best:.3f}", hint=hint)


def check_gpu_overfit(target: str, got: dict) -> None:
    losses = [float(v) for v in got["losses"]]
    check(bool(losses) and all(np.isfinite(losses)), f"Training {target} on the GPU gave NaN or infinite losses",
          expected="finite losses", found=", ".join(f"{v:.3g}" for v in losses[:8]))
    check(min(losses) < 0.25, f"{target} did not overfit one batch of 16 images on the GPU",
          expected="loss below 0.25", found=f"loss {losses[0]:.3f} -> best {min(losses):.3f}",
          hint="Compare your network with the docstring; it must train the same on any device.")


def check_cuda_move(target: str, got: dict) -> None:
    check(got["devices"] == ["cuda:0"], f"After {target}(...).to('cuda') some tensors stayed on another device",
          expected="every parameter and buffer on cuda:0", found=", ".join(got["devices"]),
          hint="Register layers as submodules (nn.ModuleList, not a Python list) and tensors with register_buffer.")
    check(got["out_device"].startswith("cuda"), "The output is not on the GPU", expected="cuda", found=got["out_device"])
    tol = 1e-3 * max(1.0, got["scale"])
    check(got["max_diff"] <= tol, "The GPU output differs from the CPU output of the same model",
          expected=f"a difference below {tol:.2g}", found=f"{got['max_diff']:.3g}")


# --------------------------------------------------------------------------- numbers

def number(desc: dict[str, Any]) -> float | None:
    """A returned value described by the probes, as a float, or None when it is not a number."""
    if desc.get("type") in ("float", "int", "numpy") or (desc.get("type") == "tensor" and "value" in desc):
        return float(desc["value"])
    return None


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
