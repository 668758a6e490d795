"""Shared checks for the VGG, ResNet and ModernCNN tests.

Comparisons of probe results, parameter counts explained by layer type, and
the catalogue of likely mistakes whose parameter count a student's model
matches exactly. Nothing here keeps state between submissions except the
per-submission memo, which is keyed on the submission's implementation object.
"""

from __future__ import annotations

import weakref
from collections import Counter
from typing import Any, Callable, Iterable

import numpy as np

from grader.testing import Built, Mistake, SubmissionError, commas

# --------------------------------------------------------------------------- probes, once per submission

_MEMO: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def probe(built: Built, name: str, **params: Any) -> dict[str, Any]:
    """``built.probe(name, **params)``, run once per submission (errors are replayed too)."""
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


INPLACE_HINT = ("Do not modify a tensor in place that is still needed: x += ..., x.relu_() or ReLU(inplace=True) "
                "applied to x itself change the input that the shortcut and autograd rely on; write out = out + identity.")
DEVICE_HINT = ("Something in forward is not on the model's device: a tensor created without device= "
               "(torch.zeros(...) lands on the CPU; use torch.zeros(..., device=x.device) or torch.zeros_like(x)), "
               "or a tensor kept as a plain attribute (use self.register_buffer or nn.Parameter so .to() moves it).")
UNREGISTERED_HINT = ("Some layer was not converted by model.to(...): layers kept in a plain Python list or dict are "
                     "invisible to PyTorch (no parameters(), no .to()); use nn.Sequential or nn.ModuleList.")

# Error texts whose cause is known whatever the test: (fragment of the message, hint).
ERROR_CAUSES = [
    ("modified by an inplace operation", INPLACE_HINT),
    ("is not on the expected device", DEVICE_HINT),
    ("Expected all tensors to be on the same device", DEVICE_HINT),
    ("and bias type", UNREGISTERED_HINT),
    ("and weight type", UNREGISTERED_HINT),
]


def explain_error(fn: Callable[[], Any], message: str, hint: str | None, kinds: Iterable[str] = ("exception",),
                  cause: str | None = None) -> Any:
    """Run ``fn``; an exception raised by the student's code becomes a Mistake with a hint.

    The hint is the one for a known error text, else ``hint``; ``cause`` names the
    mistake when the test knows it.
    """
    try:
        return fn()
    except SubmissionError as e:
        if e.kind not in kinds:
            raise
        known = next((h for fragment, h in ERROR_CAUSES if fragment in e.message), None)
        raise Mistake(message, expected="no error", found=e.message[:600], hint=known or hint, cause=cause) from None


def probe_input(result: dict[str, Any], input_shape: list[int], reference: Any) -> np.ndarray:
    """The input a probe fed the module, computed on the trusted side (probes make it from a fixed seed; the
    reference's side keeps it with its results).

    A skip test compares the output with this copy, never with the input the
    worker reports, and fails when the reported one differs: the module wrote
    into the tensor the probe passed it (a reported value must not decide a grade).
    """
    sent = reference.probe_input(list(input_shape))
    reported = result.get("input")
    if not (isinstance(reported, np.ndarray) and reported.shape == sent.shape and np.array_equal(reported, sent)):
        raise Mistake("The tensor passed to forward was changed by the module", expected="the input left unchanged",
                      found="a different input after forward",
                      hint="forward must compute a new tensor and never write into the caller's input or its autograd graph.")
    return sent


def forward_flops(built: Built, input_shape: list[int]) -> int:
    """FLOPs of one forward, for the report's comparison table: counted on the meta device (nothing is
    initialised or computed), or by a forward on the CPU where the model cannot run on the meta device."""
    try:
        return int(probe(built, "meta_cost", input_shape=input_shape)["flops"])
    except SubmissionError as e:
        if e.kind == "timeout":
            raise
    return int(probe(built, "flops", input_shape=input_shape)["flops"])


# --------------------------------------------------------------------------- outputs

def looks_like_probabilities(built: Built, input_shape: list[int]) -> bool:
    """The ``logits_check`` probe's verdict (non-negative rows that sum to one) on the keyed eval output.

    It reads the output of the keyed eval forward the structure test asks for on
    the same input, so the network runs that forward once for both tests; an
    output without a class dimension goes to the probe itself, whose error is the
    student's.
    """
    out = probe(built, "keyed_forward", input_shape=input_shape, mode="eval")["output"]
    if not isinstance(out, np.ndarray) or out.ndim < 2:
        return bool(probe(built, "logits_check", input_shape=input_shape)["looks_like_probabilities"])
    sums = out.sum(axis=1)
    return bool(np.all(out >= 0) and np.allclose(sums, np.ones_like(sums), rtol=1e-5, atol=1e-6))


def max_difference(got: np.ndarray, want: np.ndarray) -> float:
    """The largest absolute difference; infinite when the shapes differ (nothing to compare element-wise)."""
    if np.shape(got) != np.shape(want):
        return float("inf")
    return float(np.max(np.abs(got - want))) if got.size else 0.0


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-6, atol: float = 1e-8) -> bool:
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=rtol, atol=atol))


def shape_text(shape: Iterable[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def check_same_output(got: np.ndarray, want: np.ndarray, what: str, hint: str) -> None:
    """Float64 outputs under keyed weights must agree with the expected computation."""
    if got.shape != want.shape:
        raise Mistake(f"{what}: the output has the wrong shape", expected=shape_text(want.shape),
                      found=shape_text(got.shape), hint=hint)
    if not close(got, want):
        raise Mistake(f"{what}: the output differs from the expected computation "
                      f"(largest difference {max_difference(got, want):.3g})",
                      expected=f"values matching the specification (mean |y| {np.abs(want).mean():.4g})",
                      found=f"mean |y| {np.abs(got).mean():.4g}", hint=hint)


# --------------------------------------------------------------------------- parameter counts

def conv(cin: int, cout: int, k: int, bias: bool = False) -> Counter:
    return Counter({"Conv2d": cin * cout * k * k + (cout if bias else 0)})


def bn(c: int) -> Counter:
    return Counter({"BatchNorm2d": 2 * c})


def linear(fin: int, fout: int) -> Counter:
    return Counter({"Linear": fin * fout + fout})


def residual_block(cin: int, cout: int, stride: int, *, projection: str = "auto", proj_bn: bool = True,
                   proj_kernel: int = 1, bias: bool = False, bn_count: int = 2) -> Counter:
    """Parameters of a ResidualBlock, also for the usual wrong variants."""
    total = conv(cin, cout, 3, bias) + conv(cout, cout, 3, bias)
    for _ in range(bn_count):
        total += bn(cout)
    needs = stride != 1 or cin != cout
    if projection == "always" or (projection == "auto" and needs):
        total += conv(cin, cout, proj_kernel, bias)
        if proj_bn:
            total += bn(cout)
    return total


def resnet(blocks: list[int], num_classes: int = 10, *, stem_kernel: int = 3, stem_bias: bool = False,
           widths: tuple[int, ...] = (64, 128, 256, 512), strides: tuple[int, ...] = (1, 2, 2, 2),
           **block_kw: Any) -> Counter:
    total = conv(3, 64, stem_kernel, stem_bias) + bn(64)
    cin = 64
    for n, cout, stride in zip(blocks, widths, strides):
        for j in range(n):
            total += residual_block(cin if j == 0 else cout, cout, stride if j == 0 else 1, **block_kw)
        cin = cout
    return total + linear(widths[-1], num_classes)


def vgg_block(cin: int, cout: int, n: int, *, update: bool = True, bias: bool = True) -> Counter:
    total = Counter()
    c = cin
    for _ in range(n):
        total += conv(c, cout, 3, bias)
        if update:
            c = cout
    return total


VGG_LAYOUT = ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3))


def simplified_vgg(num_classes: int = 10, *, layout: Iterable[tuple[int, int, int]] = VGG_LAYOUT,
                   first_linear_in: int = 2048, hidden: int = 512, **block_kw: Any) -> Counter:
    total = Counter()
    for cin, cout, n in layout:
        total += vgg_block(cin, cout, n, **block_kw)
    return total + linear(first_linear_in, hidden) + linear(hidden, hidden) + linear(hidden, num_classes)


def modern_cnn(num_classes: int = 10, *, stem_bias: bool = True, late: tuple[int, ...] = (), **block_kw: Any) -> Counter:
    """ModernCNN's parameters; ``late``: the widths of the stages whose stride 2 is on the second block."""
    total = conv(3, 64, 3, stem_bias) + bn(64)
    for cin, cout, s in ((64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
                         (512, 512, 1)):
        if cout in late and cin != cout:
            s = 1
        elif cout in late:
            s = 2
        total += residual_block(cin, cout, s, **block_kw)
    return total + linear(512, num_classes)


def _clean(by_type: dict[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in by_type.items() if v}


def by_type_text(by_type: dict[str, int]) -> str:
    parts = [f"{k} {commas(v)}" for k, v in sorted(_clean(by_type).items())]
    return ", ".join(parts) if parts else "no parameters"


def delta_text(got: dict[str, int], want: dict[str, int]) -> str:
    got, want = _clean(got), _clean(want)
    parts = []
    for k in sorted(set(got) | set(want)):
        d = got.get(k, 0) - want.get(k, 0)
        if d:
            parts.append(f"{d:+,} in {k} layers")
    return ", ".join(parts) if parts else "the same count per layer type"


def check_params(got: dict[str, Any], want: dict[str, Any], what: str,
                 catalogue: list[tuple[Counter | dict[str, int], str, str]], fallback: str) -> None:
    """Exact count; when it differs, the delta by layer type and the catalogued mistake it matches.

    A catalogue entry is (parameters by layer type, what is wrong, cause name).
    """
    if got["total"] == want["total"]:
        return
    found_types = _clean(got["by_type"])
    matches = [(message, cause) for counts, message, cause in catalogue
               if _clean(dict(counts)) == found_types and _clean(dict(counts)) != _clean(want["by_type"])]
    hint = " Or: ".join(dict.fromkeys(m for m, _ in matches)) if matches else None
    delta = got["total"] - want["total"]
    if got["total"] == 0:
        raise Mistake(f"{what} has no parameters at all: no layer is registered",
                      expected=f"{commas(want['total'])} ({by_type_text(want['by_type'])})", found="0",
                      hint="Layers kept in a plain Python list or dict, or built only in forward, are invisible to "
                           "PyTorch: register them as attributes, in nn.Sequential or in nn.ModuleList.",
                      cause=what.split("(")[0] + ".unregistered_layers")
    raise Mistake(
        f"{what} has {commas(got['total'])} parameters, {delta:+,} compared with the specification",
        expected=f"{commas(want['total'])} ({by_type_text(want['by_type'])})",
        found=f"{commas(got['total'])} ({by_type_text(got['by_type'])}; {delta_text(got['by_type'], want['by_type'])})",
        hint=hint or fallback, cause=matches[0][1] if matches else None,
    )


# --------------------------------------------------------------------------- layer tables

_ROW_KEYS = ("type", "kernel", "stride", "groups", "out_shape", "params")


def table_rows(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The parametrised layers that ran (pooling and dropout differ between correct styles)."""
    rows = []
    for layer in trace.get("layers", []):
        if layer.get("params") or any(k in str(layer.get("type")) for k in ("Conv", "Linear", "BatchNorm")):
            rows.append({k: layer.get(k) for k in _ROW_KEYS})
    return rows


def first_divergence(student: list[dict[str, Any]], reference: list[dict[str, Any]]) -> int | None:
    for i, (a, b) in enumerate(zip(student, reference)):
        if a != b:
            return i
    return None if len(student) == len(reference) else min(len(student), len(reference))


def row_text(row: dict[str, Any] | None) -> str:
    if row is None:
        return "nothing (the table ends here)"
    text = str(row["type"])
    kernel, stride = row.get("kernel"), row.get("stride")
    if isinstance(kernel, list):
        text += f" {kernel[0]}x{kernel[1]}"
    elif kernel is not None:
        text += f" {kernel}x{kernel}"
    if isinstance(stride, list) and stride != [1, 1]:
        text += f" stride {stride[0]}"
    elif isinstance(stride, int) and stride != 1:
        text += f" stride {stride}"
    if row.get("groups") not in (None, 1):
        text += f" groups={row['groups']}"
    text += f" -> {'x'.join(str(s) for s in row.get('out_shape') or [])}"
    if row.get("params"):
        text += f" ({commas(row['params'])} parameters)"
    return text


def layer_table(student: Built, reference: Built, target: str, input_shape: list[int],
                artifacts: dict[str, Any]) -> str | None:
    """Record both layer tables for the report; return a sentence about the first layer that differs."""
    try:
        s_rows = table_rows(probe(student, "execution_trace", input_shape=input_shape))
    except SubmissionError:
        return None
    r_rows = table_rows(probe(reference, "execution_trace", input_shape=input_shape))
    index = first_divergence(s_rows, r_rows)
    artifacts.setdefault("layer_tables", {})[target] = {"student": s_rows, "reference": r_rows,
                                                        "first_divergence": index}
    if index is None:
        return None
    want = r_rows[index] if index < len(r_rows) else None
    got = s_rows[index] if index < len(s_rows) else None
    return (f"In the order the layers run on a {shape_text(input_shape)} input, layer {index + 1} is "
            f"{row_text(got)}; expected {row_text(want)}.")


def join_hints(*hints: str | None) -> str:
    return " ".join(h for h in hints if h)


# --------------------------------------------------------------------------- training

def loss_curve_check(losses: np.ndarray, what: str, *, below: float, steps: int, start: tuple[float, float] | None,
                     hint_plateau: str) -> None:
    values = [float(v) for v in losses]
    if not values or not all(np.isfinite(values)):
        raise Mistake(f"{what}: the training loss is not finite", expected="finite losses",
                      found=", ".join(f"{v:.3g}" for v in values[:8]),
                      hint="Look for a division by zero or an exploding output (a missing normalisation).")
    if start is not None and not (start[0] <= values[0] <= start[1]):
        raise Mistake(f"{what}: the loss before training is {values[0]:.3f}, far from ln(10) = 2.303 for 10 classes",
                      expected=f"between {start[0]:g} and {start[1]:g}", found=f"{values[0]:.3f}",
                      hint="At the default initialisation a 10-class network outputs logits near zero; "
                           "an extra activation or a missing normalisation changes the scale.")
    if min(values) >= below:
        floor = " (never below 1.461: a softmax before CrossEntropyLoss)" if min(values) > 1.4 else ""
        raise Mistake(f"{what}: one small batch was not overfitted in {steps} Adam steps{floor}",
                      expected=f"a loss below {below:g}", found=f"lowest loss {min(values):.3f}",
                      hint=hint_plateau)
