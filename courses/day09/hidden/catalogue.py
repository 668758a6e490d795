"""Known wrong versions of the Day 9 blocks, run here (trusted side) to name a student's mistake.

Keyed weights depend only on (layer family, tensor role, shape), so a wrong
version whose layers have the student's shapes gets exactly the student's
weights. When the student's outputs agree with one wrong version's to float64
precision, in every configuration the suite probes, the student made that
mistake: the suite names it (``cause``) and says what is wrong and where.

The wrong versions are written from the specification, each a small change to
one computation, as the modules of ``catalogue_models``; neither module is sent
to the sandbox. Their outputs are computed once per suite version and kept in
the reference's memo and cache, so a grading that finds them there never imports
torch here.
Every entry has a case in ``tests/corpus/wrong/`` whose ``cause`` the audit
checks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from grader.testing import Mistake, SubmissionError


@dataclass(frozen=True)
class Entry:
    """One known mistake: its cause name, the sentence a student reads, and how to build it."""

    cause: str
    says: str
    kind: str


@dataclass(frozen=True)
class Versions:
    """A block's wrong versions: a class of ``catalogue_models`` built as ``cls(kind, *args)``. It is imported
    (torch with it) only to compute an output that is neither memoised nor in the reference's cache."""

    name: str
    combines: bool = False   # two entries may be joined by "+": a structural one and another

    def load(self) -> type:
        import catalogue_models

        return getattr(catalogue_models, self.name)


@dataclass(frozen=True)
class Probe:
    """One measurement both sides make: constructor arguments, input shape and mode."""

    args: tuple
    input_shape: tuple
    mode: str = "eval"
    probe: str = "keyed_forward"

    def params(self) -> dict[str, Any]:
        shape = {"input_shape": list(self.input_shape)}
        return shape if self.probe == "keyed_forward_after_updates" else {**shape, "mode": self.mode}


# =========================================================================== ResidualBlock

RESIDUAL = [
    Entry("ResidualBlock.relu_before_add", "A ReLU runs on the main path right after bn2, before the shortcut is "
          "added; after bn2 the only ReLU is the one after the addition, so negative corrections can still reach "
          "the sum.", "relu_before_add"),
    Entry("ResidualBlock.relu_before_add", "The ReLU is applied to the main path before the addition and there is "
          "none after it: the block's output is not passed through a ReLU after adding the shortcut.",
          "relu_before_add_no_final"),
    Entry("ResidualBlock.no_final_relu", "The ReLU after adding the shortcut is missing: the block returns "
          "main path + shortcut without the final activation.", "no_final_relu"),
    Entry("ResidualBlock.add_before_bn2", "The shortcut is added before bn2 (to conv2's output); it is added to "
          "the output of the second BatchNorm.", "add_before_bn2"),
    Entry("ResidualBlock.bn_after_relu", "In the first layer the BatchNorm comes after the ReLU; each convolution "
          "is followed by its BatchNorm, then the ReLU.", "bn_after_relu"),
    Entry("ResidualBlock.stride_on_conv2", "The stride is on the second 3x3 convolution; the first one (and the "
          "projection) carries it.", "stride_on_conv2"),
    Entry("ResidualBlock.no_skip", "The shortcut is never added: the block returns the activated main path alone.",
          "no_skip"),
    Entry("ResidualBlock.skip_twice", "The shortcut is added twice to the main path.", "skip_twice"),
    Entry("ResidualBlock.skip_twice", "The shortcut is added twice to the main path (the shortcut module runs twice, "
          "so a projection's BatchNorm also updates its running statistics twice per forward).",
          "shortcut_called_twice"),
    Entry("ResidualBlock.unused_layer", "conv1 runs twice and conv2 never: the second convolution of the main path "
          "is a layer of its own (it maps out_channels to out_channels at stride 1).", "conv1_twice"),
    Entry("ResidualBlock.unused_layer", "bn1 runs after both convolutions and bn2 never: each convolution has a "
          "BatchNorm of its own (with its own running statistics).", "bn1_twice"),
    Entry("ResidualBlock.inplace_on_input", "The block's input goes through a ReLU before anything else (an "
          "in-place ReLU on x changes the input that both paths and autograd see).", "relu_on_input"),
    Entry("ResidualBlock.relu6", "The activations are ReLU6 (clipped at 6); the block uses plain ReLU.", "relu6"),
    Entry("ResidualBlock.conv_bias", "The convolutions have a bias before their BatchNorm; the block's convolutions "
          "use bias=False (BatchNorm's own shift makes a bias redundant).", "conv_bias"),
    Entry("ResidualBlock.conv_bias", "The two 3x3 convolutions have a bias before their BatchNorm; they use "
          "bias=False (BatchNorm's own shift makes a bias redundant).", "main_conv_bias"),
    Entry("ResidualBlock.wrong_norm_layer", "The normalisation layers are InstanceNorm2d (statistics of each image "
          "alone); the block uses BatchNorm2d.", "instance_norm"),
    Entry("ResidualBlock.wrong_norm_layer", "The normalisation layers are InstanceNorm2d (statistics of each image "
          "alone); the block uses BatchNorm2d.", "instance_norm_affine"),
    Entry("ResidualBlock.wrong_norm_layer", "The normalisation layers are BatchNorm1d, which only accepts (N, C) or "
          "(N, C, L) inputs; feature maps (N, C, H, W) need BatchNorm2d.", "batchnorm1d"),
    Entry("ResidualBlock.bn_running_stats", "The BatchNorm layers keep no running statistics "
          "(track_running_stats=False), so in eval mode they still normalise with the statistics of the batch: a "
          "prediction then depends on the other images of the batch.", "bn_batch_stats"),
    Entry("ResidualBlock.bn_running_stats", "The BatchNorm layers update their running statistics with momentum 0.9 "
          "(the Keras convention, where momentum is the weight of the old value); in PyTorch momentum is the weight "
          "of the new batch, 0.1 by default, so the running statistics follow the last batch almost entirely.",
          "bn_momentum"),
    Entry("ResidualBlock.projection_always", "A 1x1 projection shortcut is used even when stride is 1 and the "
          "channels match; there the shortcut is the identity.", "projection_always"),
    Entry("ResidualBlock.projection_no_bn", "The projection shortcut has no BatchNorm after its 1x1 convolution.",
          "projection_no_bn"),
    Entry("ResidualBlock.projection_3x3", "The projection shortcut is a 3x3 convolution; it is a 1x1 convolution.",
          "projection_3x3"),
    Entry("ResidualBlock.projection_missing", "The shortcut is projected only when the channels change: a block "
          "with stride 2 and equal channels needs the projection too (its main path halves the image).",
          "projection_channels_only"),
    Entry("ResidualBlock.projection_missing", "The shortcut is projected only when the stride is not 1: a block "
          "that changes the channels at stride 1 needs the projection too.", "projection_stride_only"),
    Entry("ResidualBlock.projection_missing", "There is no projection shortcut: when stride != 1 or the channels "
          "change, the shortcut must map the input to the output's shape.", "projection_never"),
]

RESIDUAL_PROBES = [Probe(args, (2, 64, 8, 8)) for args in [(64, 64, 1), (64, 128, 2), (64, 128, 1), (64, 64, 2)]] + [
    Probe(args, (2, 64, 8, 8), "train") for args in [(64, 128, 2), (64, 64, 1)]] + [
    Probe((64, 128, 2), (2, 64, 8, 8), probe="keyed_forward_after_updates")]


# =========================================================================== DepthwiseSeparableConv

SEPARABLE = [
    Entry("DepthwiseSeparableConv.no_groups", "The 3x3 convolution is a full convolution: without "
          "groups=in_channels it mixes all channels instead of filtering each channel on its own.", "no_groups"),
    Entry("DepthwiseSeparableConv.conv_bias", "Both convolutions keep a bias before their BatchNorm; use "
          "bias=False (BatchNorm's shift makes it redundant).", "conv_bias"),
    Entry("DepthwiseSeparableConv.conv_bias", "The depthwise convolution keeps a bias before its BatchNorm; use "
          "bias=False.", "depthwise_bias"),
    Entry("DepthwiseSeparableConv.conv_bias", "The pointwise convolution keeps a bias before its BatchNorm; use "
          "bias=False.", "pointwise_bias"),
    Entry("DepthwiseSeparableConv.missing_bn", "There is no BatchNorm after the depthwise convolution.",
          "no_bn_depthwise"),
    Entry("DepthwiseSeparableConv.missing_bn", "There is no BatchNorm after the pointwise convolution.",
          "no_bn_pointwise"),
    Entry("DepthwiseSeparableConv.missing_relu", "There is no ReLU after the pointwise convolution's BatchNorm.",
          "no_relu_pointwise"),
    Entry("DepthwiseSeparableConv.missing_relu", "There is no ReLU after the depthwise convolution's BatchNorm.",
          "no_relu_depthwise"),
    Entry("DepthwiseSeparableConv.stride_on_pointwise", "The stride is on the pointwise 1x1 convolution; the "
          "depthwise 3x3 convolution is the one that downsamples (a strided 1x1 conv skips pixels).",
          "stride_on_pointwise"),
    Entry("DepthwiseSeparableConv.channel_multiplier", "The depthwise convolution changes the channel count "
          "(in_channels -> out_channels, a channel multiplier); here it keeps in_channels and only the pointwise "
          "convolution changes them.", "channel_multiplier"),
    Entry("DepthwiseSeparableConv.relu6", "The activations are ReLU6 (clipped at 6, as in the MobileNet paper); "
          "this lesson's block uses plain ReLU.", "relu6"),
    Entry("DepthwiseSeparableConv.wrong_norm_layer", "The normalisation layers are InstanceNorm2d; the block uses "
          "BatchNorm2d.", "instance_norm"),
    Entry("DepthwiseSeparableConv.bn_after_relu", "Each BatchNorm comes after its ReLU; the order is conv -> "
          "BatchNorm -> ReLU.", "bn_after_relu"),
    Entry("DepthwiseSeparableConv.pointwise_kernel", "The pointwise convolution is 3x3; it is a 1x1 convolution.",
          "pointwise_3x3"),
]

SEPARABLE_PROBES = [Probe((32, 64), (2, 32, 5, 5)), Probe((16, 24, 2), (2, 16, 9, 7)),
                    Probe((16, 24, 2), (2, 16, 9, 7), "train")]


# =========================================================================== InceptionModule

_BRANCH_NAMES = {"1": "the 1x1 branch", "3r": "the 3x3 branch's 1x1 reduction", "3": "the 3x3 branch's 3x3 conv",
                 "5r": "the 5x5 branch's 1x1 reduction", "5": "the 5x5 branch's 5x5 conv", "p": "the pool branch's 1x1 conv"}


INCEPTION = [
    Entry("InceptionModule.branch_kernel", "The 5x5 branch uses a 3x3 convolution; it needs a 5x5 convolution "
          "(with padding=2) to see a 5x5 window.", "five_as_three"),
    Entry("InceptionModule.avg_pool", "The pool branch uses average pooling; it uses a 3x3 max-pool "
          "(stride 1, padding 1).", "avg_pool"),
    Entry("InceptionModule.no_pool_projection", "The pool branch has no 1x1 convolution (and ReLU) after the "
          "max-pool, so it passes in_channels channels instead of pool_proj.", "no_pool_projection"),
    Entry("InceptionModule.no_reduce", "The 3x3 convolution reads the module's input directly; the 3x3 branch "
          "starts with a 1x1 reduction to ch3x3_reduce channels.", "no_reduce_3x3"),
    Entry("InceptionModule.no_reduce", "The 5x5 convolution reads the module's input directly; the 5x5 branch "
          "starts with a 1x1 reduction to ch5x5_reduce channels.", "no_reduce_5x5"),
    Entry("InceptionModule.conv_no_bias", "The convolutions have no bias; in this module (no BatchNorm) every "
          "convolution keeps its bias.", "no_bias"),
    Entry("InceptionModule.relu6", "The activations are ReLU6 (clipped at 6); the module uses plain ReLU.", "relu6"),
] + [Entry("InceptionModule.missing_relu", f"There is no ReLU after {name}; every convolution of the module is "
           f"followed by one.", f"no_relu_{where}") for where, name in _BRANCH_NAMES.items()]

INCEPTION_PROBES = [Probe((64, 32, 48, 64, 8, 16, 16), (2, 64, 9, 9)), Probe((16, 4, 6, 8, 2, 4, 3), (2, 16, 7, 5))]


# =========================================================================== VGGBlock

VGG = [
    Entry("VGGBlock.in_channels_not_updated", "Every convolution maps in_channels to out_channels; after the first "
          "one the feature maps have out_channels channels, so the later convolutions read out_channels.",
          "in_channels_not_updated"),
    Entry("VGGBlock.pool_every_conv", "The block max-pools after every convolution; it pools once, after the last "
          "convolution and its ReLU.", "pool_every_conv"),
    Entry("VGGBlock.missing_relu", "There is no ReLU after the last convolution of the block; every convolution is "
          "followed by one.", "no_relu_last"),
    Entry("VGGBlock.padding", "The convolutions have no padding, so each one shrinks the image; padding=1 keeps "
          "the size and only the max-pool halves it.", "padding0"),
    Entry("VGGBlock.avg_pool", "The block ends in average pooling; it ends in a 2x2 max-pool.", "avg_pool"),
    Entry("VGGBlock.conv_no_bias", "The convolutions have no bias; VGG has no BatchNorm, so they keep the default "
          "bias=True.", "no_bias"),
    Entry("VGGBlock.relu6", "The activations are ReLU6 (clipped at 6); the block uses plain ReLU.", "relu6"),
    Entry("VGGBlock.extra_batchnorm", "A BatchNorm follows each convolution; the lesson's VGG has none.", "batchnorm"),
]

VGG_PROBES = [Probe((3, 64, 2), (2, 3, 16, 16)), Probe((64, 128, 3), (2, 64, 8, 8)), Probe((8, 16, 1), (2, 8, 6, 6))]


CATALOGUE: dict[str, tuple[Versions, list[Entry], list[Probe]]] = {
    "ResidualBlock": (Versions("_Residual", combines=True), RESIDUAL, RESIDUAL_PROBES),
    "DepthwiseSeparableConv": (Versions("_Separable"), SEPARABLE, SEPARABLE_PROBES),
    "InceptionModule": (Versions("_Inception"), INCEPTION, INCEPTION_PROBES),
    "VGGBlock": (Versions("_VGG"), VGG, VGG_PROBES),
}


# =========================================================================== matching

def _close(got: np.ndarray, want: np.ndarray) -> bool:
    if got.shape != want.shape:
        return False
    scale = float(np.max(np.abs(want))) if want.size else 1.0
    return bool(np.allclose(got, want, rtol=1e-6, atol=max(1e-8, 1e-9 * scale)))


def _variant_output(reference: Any, versions: Versions, entry: Entry, p: Probe) -> tuple[str, Any]:
    """("ok", output) or ("error", message) for one wrong version, computed once per suite version."""
    key = f"catalogue|{versions.name}|{entry.kind}|{p}"
    memo = reference.memo
    if key not in memo:
        import torch

        from grader.worker.probes import PROBES

        cls = versions.load()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng():
                out = PROBES[p.probe](lambda: cls(entry.kind, *p.args), **p.params())
            memo[key] = ("ok", out["output"])
        except Exception as e:  # noqa: BLE001 - a wrong version may fail where the student's fails too
            memo[key] = ("error", f"{type(e).__name__}: {e}")
        finally:
            torch.set_num_threads(threads)
    return memo[key]


def _student_output(run: Callable[..., dict], student: Any, target: str, p: Probe) -> tuple[str, Any]:
    try:
        return "ok", run(student.build(target, *p.args), p.probe, **p.params())["output"]
    except SubmissionError as e:
        if e.kind != "exception":
            raise
        return "error", e.message


def identify(run: Callable[..., dict], student: Any, reference: Any, target: str, outputs: bool = True) -> Entry | None:
    """The catalogued mistake whose outputs the student's block reproduces exactly, if any.

    ``run`` is the suite's memoised probe runner, so the student's forwards are the
    ones the structure tests already asked for. A wrong version that fails where the
    student's block fails counts as a match only with the same error message. With
    ``outputs=False`` only mistakes that show without a forward (no layer registered)
    are looked for, unless the student's forward raises (then any test that needs it
    fails because of the forward's mistake).
    """
    if target not in CATALOGUE:
        return None
    versions, entries, probes = CATALOGUE[target]
    counted = run(student.build(target, *probes[0].args), "param_count")["total"]
    if counted == 0 and run(reference.build(target, *probes[0].args), "param_count")["total"] > 0:
        return Entry(f"{target}.unregistered_layers", "No layer is registered: layers kept in a plain Python list or "
                     "dict are invisible to PyTorch, so they get no parameters(), no .to() and no state_dict().", "")
    if not outputs and all(_student_output(run, student, target, p)[0] == "ok" for p in probes):
        return None  # the test failed for a reason of its own, not because the forward breaks
    student_out = [_student_output(run, student, target, p) for p in probes]
    reference_out = [("ok", run(reference.build(target, *p.args), p.probe, **p.params())["output"]) for p in probes]
    if all(s[0] == "ok" and _close(s[1], r[1]) for s, r in zip(student_out, reference_out)):
        return None

    def agrees(entry: Entry) -> bool:
        for p, (state, got) in zip(probes, student_out):
            v_state, v_out = _variant_output(reference, versions, entry, p)
            if state != v_state:
                return False
            if state == "ok" and not _close(got, v_out):
                return False
            if state == "error" and got.splitlines()[0] != v_out.splitlines()[0]:
                return False
        return True

    for entry in entries:
        if agrees(entry):
            return entry
    return _second_mistake(run, student, reference, target, agrees) if versions.combines else None


def _variant_counts(reference: Any, versions: Versions, kind: str, probes: list[Probe]) -> list[int]:
    """A wrong version's parameter count for each probe's constructor arguments (trusted side, memoised)."""
    key = f"catalogue-count|{versions.name}|{kind}"
    if key not in reference.memo:
        cls = versions.load()
        reference.memo[key] = [sum(t.numel() for t in cls(kind, *p.args).parameters()) for p in probes]
    return reference.memo[key]


def _second_mistake(run: Callable[..., dict], student: Any, reference: Any, target: str,
                    agrees: Callable[[Entry], bool]) -> Entry | None:
    """Two mistakes in one block: one that changes the parameter count, and one catalogued mistake more.

    The parameter count tells which structural entry the block has (its own test
    names it); the block's outputs are then compared with that entry combined with
    each entry that keeps the count, and the one that agrees everywhere names the
    outputs' mistake. Only for a block whose count differs from the specification,
    so a block with one uncatalogued mistake costs nothing more.
    """
    versions, entries, probes = CATALOGUE[target]
    counts = [run(student.build(target, *p.args), "param_count")["total"] for p in probes]
    expected = [run(reference.build(target, *p.args), "param_count")["total"] for p in probes]
    if counts == expected:
        return None
    structural = [e for e in entries if _variant_counts(reference, versions, e.kind, probes) == counts]
    others = [e for e in entries if _variant_counts(reference, versions, e.kind, probes) == expected]
    for first in structural:
        for second in others:
            if agrees(Entry(second.cause, second.says, f"{first.kind}+{second.kind}")):
                return second
    return None


def concat_order(got: np.ndarray, want: np.ndarray, widths: tuple[int, ...], names: tuple[str, ...]) -> str | None:
    """The branch order of a concatenation whose slices are the reference's branches in another order."""
    if got.shape != want.shape:
        return None
    starts = np.cumsum((0,) + widths)
    slices = [want[:, starts[i]:starts[i + 1]] for i in range(len(widths))]
    for order in itertools.permutations(range(len(widths))):
        if list(order) == list(range(len(widths))):
            continue
        if _close(got, np.concatenate([slices[i] for i in order], axis=1)):
            return ", ".join(names[i] for i in order)
    return None


def name(exc: Mistake, entry: Entry) -> Mistake:
    """The failure, named: its cause, and what is wrong in the hint."""
    exc.cause = entry.cause
    exc.hint = entry.says
    return exc
