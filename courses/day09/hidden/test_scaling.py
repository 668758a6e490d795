"""Bonus: EfficientNet-style compound scaling of the lesson's ResNet."""

from __future__ import annotations

import math

import checks_b as cb
from grader.testing import Mistake, check, check_equal, grade

RESNET18_PARAMS = 11_173_962


def _check_int(name: str, args: tuple, got, want) -> None:
    """A value equal to the expected one but not a Python int (channels and layer counts must be ints)."""
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        raise Mistake(f"{cb.call_text(name, args)} must return an int", expected=f"{want!r} (int)",
                      found=f"a {type(got).__name__}: {repr(got)[:80]}",
                      hint="Layer sizes and counts must be Python ints: return a single int, not a container or array.")
    if got == want and not isinstance(got, int):
        raise Mistake(f"{cb.call_text(name, args)} must return an int", expected=f"{want!r} (int)",
                      found=f"{got!r} ({type(got).__name__})",
                      hint="Layer sizes and counts must be Python ints: wrap the result in int(...).")


def _as_numbers(value) -> list[float] | None:
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    return None


@grade("compound_coefficients", "bonus")
def test_compound_coefficients(student, reference):
    """compound_coefficients(phi) returns (alpha**phi, beta**phi, gamma**phi) for depth, width and resolution"""
    for args in ((0,), (1,), (2,), (3,), (1.5,), (2, 1.1, 1.2, 1.3)):
        got = student.call("compound_coefficients", *args)
        want = reference.call("compound_coefficients", *args)
        where = cb.call_text("compound_coefficients", args)
        numbers = _as_numbers(got)
        check(numbers is not None and len(numbers) == 3, f"{where} must return three numbers (depth, width, resolution)",
              expected="(d, w, r)", found=repr(got)[:80])
        if all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(numbers, want)):
            continue
        names = ("depth = alpha**phi", "width = beta**phi", "resolution = gamma**phi")
        wrong = [n for n, a, b in zip(names, numbers, want) if not math.isclose(a, b, rel_tol=1e-9)]
        hint, cause = "Each multiplier is its base raised to the power phi, in the order (depth, width, resolution).", None
        if sorted(round(v, 9) for v in numbers) == sorted(round(v, 9) for v in want):
            hint = "The three multipliers are right but in the wrong order: the order is (depth, width, resolution)."
            cause = "compound_coefficients.order"
        elif len(wrong) == 2:
            hint = f"Two multipliers use each other's base ({wrong[0]}, {wrong[1]})."
            cause = "compound_coefficients.order"
        raise Mistake(f"{where} is wrong for {', '.join(wrong)}",
                      expected="(" + ", ".join(f"{v:.6g}" for v in want) + ")",
                      found="(" + ", ".join(f"{v:.6g}" for v in numbers) + ")", hint=hint, cause=cause)


ROUND_CHANNELS = [(64, 1.1), (512, 1.1), (64, 1.0), (128, 1.21), (256, 1.331), (3, 1.0), (10, 1.0), (20, 1.0),
                  (100, 0.5, 16), (37, 1.0, 4)]


@grade("round_channels", "bonus")
def test_round_channels(student, reference):
    """round_channels rounds to the nearest multiple of the divisor, at least the divisor, never losing more than 10%"""
    for args in ROUND_CHANNELS:
        got = student.call("round_channels", *args)
        want = reference.call("round_channels", *args)
        if isinstance(got, int) and got == want:
            continue
        _check_int("round_channels", args, got, want)
        scaled = args[0] * args[1]
        divisor = args[2] if len(args) > 2 else 8
        hint = (f"The scaled count ({scaled:g}) goes to the nearest multiple of the divisor, never below the divisor "
                f"and never more than 10% below the scaled count.")
        cause = None
        if isinstance(got, (int, float)) and got % divisor:
            hint, cause = f"The result is not a multiple of divisor={divisor}. " + hint, "round_channels.divisor"
        elif isinstance(got, (int, float)) and got < 0.9 * scaled:
            hint = "Rounding must never lose more than 10% of the channels: add one more divisor in that case."
            cause = "round_channels.ten_percent_rule"
        raise Mistake(f"{cb.call_text('round_channels', args)} is wrong", expected=repr(want), found=repr(got), hint=hint,
                      cause=cause)


@grade("round_depth", "bonus")
def test_round_depth(student, reference):
    """round_depth rounds the scaled block count up (ceil)"""
    for args in ((2, 1.0), (2, 1.2), (2, 1.1), (2, 1.44), (2, 1.728), (3, 1.0), (1, 2.0)):
        got = student.call("round_depth", *args)
        want = reference.call("round_depth", *args)
        if isinstance(got, int) and got == want:
            continue
        _check_int("round_depth", args, got, want)
        hint, cause = "The scaled block count is rounded up: a stage never loses a block.", None
        if got == round(args[0] * args[1]):
            hint = f"Rounding to the nearest gives {got} for {args[0]} * {args[1]:g} = {args[0] * args[1]:g}; depth is rounded up."
            cause = "round_depth.rounds_to_nearest"
        raise Mistake(f"{cb.call_text('round_depth', args)} is wrong", expected=repr(want), found=repr(got), hint=hint,
                      cause=cause)


@grade("round_resolution", "bonus")
def test_round_resolution(student, reference):
    """round_resolution scales the image side and rounds to the nearest integer"""
    for args in ((32, 1.0), (32, 1.15), (32, 1.3225), (32, 1.520875), (224, 1.15)):
        got = student.call("round_resolution", *args)
        want = reference.call("round_resolution", *args)
        if isinstance(got, int) and got == want:
            continue
        _check_int("round_resolution", args, got, want)
        raise Mistake(f"{cb.call_text('round_resolution', args)} is wrong", expected=repr(want), found=repr(got),
                      hint="The scaled side is rounded to the nearest integer and returned as an int.")


@grade("ScaledResNet", "bonus")
def test_scaled_resnet_sizes(student, reference):
    """ScaledResNet(1.0, 1.0) is the lesson's ResNet-18 and other multipliers scale widths and depths"""
    for args in ((1.0, 1.0), (0.5, 1.5), (0.25, 0.5, 7)):
        got = cb.run(student.build("ScaledResNet", *args), "meta_cost")
        want = cb.run(reference.build("ScaledResNet", *args), "meta_cost")
        where = cb.call_text("ScaledResNet", args)
        for what, key in (("stage widths (output channels of its 3x3 convolutions)", "widths"),
                          ("blocks per stage", "depths")):
            check(got[key] == want[key], f"{where} does not have the rounded {what}",
                  expected=str(want[key]), found=str(got[key]),
                  hint="Stage widths are round_channels(c, width_mult) for c in (64, 128, 256, 512); "
                       "each stage has round_depth(2, depth_mult) residual blocks.")
        if got["params"] != want["params"]:
            by = ", ".join(f"{t} {cb.signed(got['by_type'].get(t, 0) - want['by_type'].get(t, 0))}"
                           for t in sorted(set(got["by_type"]) | set(want["by_type"]))
                           if got["by_type"].get(t, 0) != want["by_type"].get(t, 0))
            raise Mistake(f"{where} has {cb.signed(got['params'] - want['params'])} parameters", expected=f"{want['params']:,}",
                          found=f"{got['params']:,}", hint=f"Difference by layer type: {by}. The stem uses widths[0]; each stage "
                          "starts with a ResidualBlock of stride 1, 2, 2, 2 and has depths[i] blocks; fc reads widths[3]. "
                          "ScaledResNet builds on your ResidualBlock: fix that first if its tests fail.")
    unscaled = student.build("ScaledResNet", 1.0, 1.0)
    if not unscaled.stand_ins:  # with a stand-in block it is no longer ResNet-18; the comparison above judged it
        check_equal(cb.run(unscaled, "meta_cost")["params"], RESNET18_PARAMS, "parameters of ScaledResNet(1.0, 1.0)")


@grade("ScaledResNet", "bonus")
def test_scaled_resnet_equivalence(student, reference):
    """ScaledResNet computes the lesson's ResNet at the scaled sizes (same weights, same logits, eval and train)"""
    for mode in ("eval", "train"):
        cb.same_function(student, reference, "ScaledResNet", (0.25, 0.5), [1, 3, 32, 32], mode=mode)


@grade("efficientnet_style", "bonus")
def test_efficientnet_style(student, reference):
    """efficientnet_style(phi) returns the compound-scaled ResNet and its input resolution"""
    for phi in (0, 1, 2):
        got = cb.run(student.build("efficientnet_style", phi), "meta_cost")
        want = cb.run(reference.build("efficientnet_style", phi), "meta_cost")
        where = cb.call_text("efficientnet_style", (phi,))
        check(got.get("resolution") is not None and got.get("resolution_type") == "int",
              f"{where} must return (model, resolution) with an int resolution",
              expected="(nn.Module, int)", found=str(got.get("resolution_type", "a single object")))
        check_equal(got["resolution"], want["resolution"], f"resolution returned by {where}",
                    hint="The resolution is the base resolution scaled by the resolution coefficient for phi and "
                         "rounded as round_resolution does (37 for phi = 1).")
        if got["params"] != want["params"] or got["widths"] != want["widths"] or got["depths"] != want["depths"]:
            raise Mistake(f"The model returned by {where} is not ScaledResNet(width_mult=beta**phi, depth_mult=alpha**phi)",
                          expected=f"stage widths {want['widths']}, blocks per stage {want['depths']}, {want['params']:,} parameters",
                          found=f"stage widths {got['widths']}, blocks per stage {got['depths']}, {got['params']:,} parameters",
                          hint="The model's width and depth multipliers are the two coefficients that "
                               "compound_coefficients(phi) gives for width and depth; check which one goes where.",
                          cause="efficientnet_style.multipliers")


@grade("efficientnet_style", "bonus")
def test_efficientnet_cost_growth(student, reference):
    """The compute of efficientnet_style(phi) grows as the rounded multipliers predict (2.78x, 4.32x, 9.81x)"""
    base = cb.run(reference.build("efficientnet_style", 0), "meta_cost")["flops"]
    mine_base = cb.run(student.build("efficientnet_style", 0), "meta_cost")["flops"]
    rows_got, rows_want, bad = [], [], []
    for phi in (1, 2, 3):
        got = cb.run(student.build("efficientnet_style", phi), "meta_cost")
        want = cb.run(reference.build("efficientnet_style", phi), "meta_cost")
        ratio_got, ratio_want = got["flops"] / max(mine_base, 1), want["flops"] / base
        rows_got.append(f"phi={phi}: {ratio_got:.2f}x")
        rows_want.append(f"phi={phi}: {ratio_want:.2f}x")
        if not math.isclose(got["flops"], want["flops"], rel_tol=0.01):
            bad.append(phi)
    if bad:
        raise Mistake("The forward cost of the scaled models (FLOPs at their own resolution, relative to phi = 0) does not "
                      "follow the rounded compound multipliers",
                      expected="; ".join(rows_want), found="; ".join(rows_got),
                      hint="Cost grows with depth x width^2 x resolution^2 of the *rounded* sizes (widths to multiples of 8, "
                           "depths by ceil, resolution to the nearest pixel), which is why it is not exactly 2^phi.")
