"""DepthwiseSeparableConv and MobileNetV1."""

from __future__ import annotations

import pytest

import checks_b as cb
from grader.testing import Mistake, check, check_equal, grade

OVERFIT = dict(input_shape=[4, 3, 32, 32], steps=30, lr=1e-3, target_loss=0.1)
OVERFIT_BELOW = cb.OVERFIT_BELOW

DSC_STRIDED = (16, 24, 2)
DSC_LESSON = (32, 64)


def _convs(anatomy: dict) -> list[dict]:
    return [r for r in anatomy["layers"] if r["type"] == "Conv2d"]


# --------------------------------------------------------------------------- DepthwiseSeparableConv

@grade("DepthwiseSeparableConv", "api")
def test_dsc_builds(student):
    """DepthwiseSeparableConv(in, out) and (in, out, stride) build nn.Modules"""
    for args in (DSC_LESSON, DSC_STRIDED):
        d = cb.run(student.build("DepthwiseSeparableConv", *args), "describe")
        check(d["kind"] == "module", f"{cb.call_text('DepthwiseSeparableConv', args)} did not build an nn.Module",
              expected="an nn.Module", found=d["type"])


@grade("DepthwiseSeparableConv", "shape")
@pytest.mark.compares_outputs
def test_dsc_shape(student, reference):
    """DepthwiseSeparableConv outputs out_channels and divides H x W by the stride (rounding up)"""
    for args, shape, want in ((DSC_LESSON, [2, 32, 9, 9], [2, 64, 9, 9]), (DSC_STRIDED, [2, 16, 9, 7], [2, 24, 5, 4])):
        mine = cb.run(student.build("DepthwiseSeparableConv", *args), "anatomy", input_shape=shape)
        where = f"{cb.call_text('DepthwiseSeparableConv', args)} on an input of shape {cb.shape_text(shape)}"
        if not mine["ok"]:
            theirs = cb.run(reference.build("DepthwiseSeparableConv", *args), "anatomy", input_shape=shape)
            raise Mistake(f"{where} raised an error", expected=f"output {cb.shape_text(want)}", found=mine["error"],
                          hint=" ".join(cb.diagnose(mine, theirs)) or None)
        check_equal(mine["shape"], want, f"output shape of {where}",
                    hint="The output must have out_channels channels and be divided in size by the stride only.")


@grade("DepthwiseSeparableConv", "params")
def test_dsc_params(student, reference):
    """DepthwiseSeparableConv has the lesson's parameter count (2,528 for 32 -> 64)"""
    for args in (DSC_LESSON, DSC_STRIDED, (64, 64, 1)):
        cb.check_params(student, reference, "DepthwiseSeparableConv", args, cb.dsc_mistakes(args[0], args[1]))


@grade("DepthwiseSeparableConv", "structure")
@pytest.mark.compares_outputs
def test_dsc_equivalence_eval(student, reference):
    """DepthwiseSeparableConv computes the specified function in eval mode (same weights, same output)"""
    cb.same_function(student, reference, "DepthwiseSeparableConv", DSC_LESSON, [2, 32, 5, 5])
    cb.same_function(student, reference, "DepthwiseSeparableConv", DSC_STRIDED, [2, 16, 9, 7])


@grade("DepthwiseSeparableConv", "structure")
@pytest.mark.compares_outputs
def test_dsc_equivalence_train(student, reference):
    """DepthwiseSeparableConv computes the specified function in train mode (BatchNorm on batch statistics)"""
    cb.same_function(student, reference, "DepthwiseSeparableConv", DSC_STRIDED, [2, 16, 9, 7], mode="train")


@grade("DepthwiseSeparableConv", "structure")
@pytest.mark.compares_outputs
def test_dsc_depthwise_then_pointwise(student, reference):
    """DepthwiseSeparableConv runs a 3x3 conv with groups = in_channels, then a 1x1 conv with groups = 1"""
    cin, cout, stride = DSC_STRIDED
    shape = [2, cin, 9, 7]
    mine = cb.run(student.build("DepthwiseSeparableConv", *DSC_STRIDED), "anatomy", input_shape=shape)
    if not mine["ok"]:
        theirs = cb.run(reference.build("DepthwiseSeparableConv", *DSC_STRIDED), "anatomy", input_shape=shape)
        raise Mistake(f"{cb.call_text('DepthwiseSeparableConv', DSC_STRIDED)} raised an error",
                      expected="a forward pass without errors", found=mine["error"],
                      hint=" ".join(cb.diagnose(mine, theirs)) or None)
    convs = _convs(mine)
    found = "; ".join(cb.conv_text(r) for r in convs) or "no nn.Conv2d ran"
    expected = (f"Conv2d 3x3 {cin}->{cin} (stride {stride}, padding 1, groups {cin}, no bias); "
                f"Conv2d 1x1 {cin}->{cout} (padding 0, no bias)")
    d = "DepthwiseSeparableConv."
    check(len(convs) == 2, f"{len(convs)} convolutions ran where a depthwise and a pointwise conv are expected",
          expected=expected, found=found, hint="The block runs exactly two convolutions: the depthwise one, then the "
                                               "pointwise one.")
    dw, pw = convs
    check(dw["kernel"] == [3, 3], "The first convolution is not the 3x3 depthwise one",
          expected=expected, found=found, hint="The depthwise 3x3 convolution comes first, the pointwise one second.",
          cause=d + "order")
    check(dw["groups"] != 1, "The 3x3 convolution is a full convolution: it has no groups, so it is not depthwise",
          expected=expected, found=found,
          hint=f"Without groups the 3x3 convolution mixes every input channel into every output channel "
               f"({cin} x {cin} x 9 weights); a depthwise convolution filters each channel on its own ({cin} x 9).",
          cause=d + "no_groups")
    check(dw["groups"] == cin and dw["in_channels"] == cin and dw["out_channels"] == cin,
          "The depthwise conv changes the channel count", expected=expected, found=found,
          hint="A depthwise conv with more output channels than inputs is a 'channel multiplier' variant; in this "
               "lesson the depthwise conv keeps in_channels and only the pointwise conv changes the count.",
          cause=d + "channel_multiplier")
    check(pw["kernel"] == [1, 1], "The pointwise convolution is not 1x1", expected=expected, found=found,
          hint="The pointwise convolution only mixes channels: its kernel covers one pixel.", cause=d + "pointwise_kernel")
    check(pw["groups"] == 1 and pw["in_channels"] == cin and pw["out_channels"] == cout,
          "The pointwise conv does not mix all channels (in_channels -> out_channels, no groups)",
          expected=expected, found=found, cause=d + "pointwise_groups")
    check(dw["stride"] == [stride, stride] and pw["stride"] == [1, 1],
          "The stride belongs to the depthwise 3x3 conv; the pointwise 1x1 conv always has stride 1",
          expected=expected, found=found,
          hint="Strided 1x1 convolutions skip pixels; the depthwise 3x3 conv is the one that downsamples.",
          cause=d + "stride_on_pointwise")
    bns = [r for r in mine["layers"] if "BatchNorm" in r["type"]]
    other_norms = sorted(t for t in mine.get("module_types", {}) if "Norm" in t and t != "BatchNorm2d")
    check(len(bns) == 2, f"{len(bns)} BatchNorm layers ran where each of the two convs is followed by one",
          expected="BatchNorm2d(in_channels) after the depthwise conv, BatchNorm2d(out_channels) after the pointwise conv",
          found=", ".join([cb.layer_text(r) for r in bns] + other_norms) or "none",
          hint=f"{', '.join(other_norms)} is used in place of BatchNorm2d." if other_norms else None,
          cause=d + ("wrong_norm_layer" if other_norms else "missing_bn"))
    check(not dw["bias"] and not pw["bias"], "A convolution followed by BatchNorm has a bias",
          expected="no bias on either convolution", found=found,
          hint="BatchNorm subtracts the mean and adds its own shift, so a conv bias before it is wasted parameters.",
          cause=d + "conv_bias")


@grade("DepthwiseSeparableConv", "structure")
def test_dsc_gradients(student, reference):
    """DepthwiseSeparableConv trains every parameter and leaves its input unchanged"""
    shape = [2, 16, 9, 7]
    flow = cb.run_or_explain(student, reference, "DepthwiseSeparableConv", DSC_STRIDED, "gradient_flow", shape)
    check(not flow["without_grad"], "Some parameters get no gradient, so they never learn",
          expected="a gradient for every parameter", found=", ".join(flow["without_grad"][:5]),
          hint="Every layer created in __init__ must be used in forward.", cause="DepthwiseSeparableConv.unused_layer")
    for mode in ("eval", "train"):
        mutated = cb.run(student.build("DepthwiseSeparableConv", *DSC_STRIDED), "input_mutation", input_shape=shape, mode=mode)
        check(not mutated["mutated"], f"The forward changes its input tensor in place ({mode} mode)",
              expected="x unchanged after forward", found="x modified",
              hint="Do not apply an in-place operation (relu_, +=) to the input x.",
              cause="DepthwiseSeparableConv.inplace_on_input")


@grade("DepthwiseSeparableConv", "device")
def test_dsc_meta(student, reference):
    """DepthwiseSeparableConv runs on any device (forward on the meta device)"""
    got = cb.run_or_explain(student, reference, "DepthwiseSeparableConv", DSC_STRIDED, "meta_forward", [2, 16, 9, 7])
    check_equal(got["shape"], [2, 24, 5, 4], "output shape on the meta device",
                hint="Create tensors in forward from the input (device=x.device), and register tensors as buffers.")


# --------------------------------------------------------------------------- MobileNetV1

@grade("MobileNetV1", "api")
def test_mobilenet_builds(student):
    """MobileNetV1() and MobileNetV1(num_classes) build nn.Modules"""
    for args in ((), (7,)):
        d = cb.run(student.build("MobileNetV1", *args), "describe")
        check(d["kind"] == "module", f"{cb.call_text('MobileNetV1', args)} did not build an nn.Module",
              expected="an nn.Module", found=d["type"])


@grade("MobileNetV1", "shape")
def test_mobilenet_shape(student, reference):
    """MobileNetV1 maps (N, 3, H, W) images to (N, num_classes) logits, also for odd sizes"""
    for args, shape, want in (((), [2, 3, 32, 32], [2, 10]), ((7,), [1, 3, 17, 23], [1, 7])):
        mine = cb.run(student.build("MobileNetV1", *args), "anatomy", input_shape=shape)
        where = f"{cb.call_text('MobileNetV1', args)} on an input of shape {cb.shape_text(shape)}"
        if not mine["ok"]:
            theirs = cb.run(reference.build("MobileNetV1", *args), "anatomy", input_shape=shape)
            raise Mistake(f"{where} raised an error", expected=f"output {cb.shape_text(want)}", found=mine["error"],
                          hint=" ".join(cb.diagnose(mine, theirs)) or
                          "Use global average pooling (AdaptiveAvgPool2d((1, 1))) so any input size works.")
        check_equal(mine["shape"], want, f"output shape of {where}",
                    hint="Flatten after the global average pool and end with Linear(512, num_classes).")


@grade("MobileNetV1", "params")
def test_mobilenet_params(student, reference, artifacts):
    """MobileNetV1 has 274,250 parameters (and the classifier follows num_classes)"""
    cb.record_comparison(artifacts, student, reference, "MobileNetV1", "MobileNet")
    cb.check_params(student, reference, "MobileNetV1", (), cb.mobilenet_mistakes(10))
    cb.check_params(student, reference, "MobileNetV1", (7,), cb.mobilenet_mistakes(7))


@grade("MobileNetV1", "structure")
@pytest.mark.compares_outputs
def test_mobilenet_equivalence(student, reference, artifacts):
    """MobileNetV1 computes the specified network in eval and in train mode (same weights, same logits)"""
    shape = [1, 3, 32, 32]
    mine = cb.run(student.build("MobileNetV1"), "anatomy", input_shape=shape)
    theirs = cb.run(reference.build("MobileNetV1"), "anatomy", input_shape=shape)
    cb.record_layer_table(artifacts, "MobileNetV1", mine, theirs)
    cb.same_function(student, reference, "MobileNetV1", (), shape)
    cb.same_function(student, reference, "MobileNetV1", (), shape, mode="train")


@grade("MobileNetV1", "structure")
def test_mobilenet_blocks(student, reference):
    """MobileNetV1 has the lesson's six depthwise blocks with strides 1, 2, 1, 2, 1, 2"""
    shape = [1, 3, 32, 32]
    mine = cb.run(student.build("MobileNetV1"), "anatomy", input_shape=shape)
    theirs = cb.run(reference.build("MobileNetV1"), "anatomy", input_shape=shape)
    if not mine["ok"]:
        raise Mistake("MobileNetV1() raised an error on a 32 x 32 image", expected="logits", found=mine["error"],
                      hint=" ".join(cb.diagnose(mine, theirs)) or None)

    def blocks(anatomy: dict) -> list[str]:
        return [f"{r['in_channels']} -> stride {r['stride'][0]} -> {r['out_shape'][2]}x{r['out_shape'][3]}"
                for r in _convs(anatomy) if r["kernel"] == [3, 3] and r["groups"] > 1]

    got, want = blocks(mine), blocks(theirs)
    if got == want:
        return
    if not got:
        hint, cause = ("No grouped 3x3 convolution ran: the blocks must be DepthwiseSeparableConv blocks.",
                       "MobileNetV1.no_depthwise_blocks")
    elif len(got) != len(want):
        hint = (f"{len(got)} depthwise blocks ran where the lesson's MobileNetV1 has {len(want)}; the paper's "
                "13-block ImageNet version is too big for 32 x 32 images.")
        cause = "MobileNetV1.paper_layout" if len(got) > len(want) else "MobileNetV1.block_count"
    else:
        hint, cause = ("The blocks run in the right number but with other strides (see the table above).",
                       "MobileNetV1.stride_schedule")
    raise Mistake("The depthwise blocks (input channels, stride, output size for a 32 x 32 image) differ from the lesson's",
                  expected="; ".join(want), found="; ".join(got), hint=hint, cause=cause)


@grade("MobileNetV1", "structure")
def test_mobilenet_network_checks(student, reference):
    """MobileNetV1 returns logits, keeps samples independent and trains every parameter"""
    shape = [2, 3, 32, 32]
    probs = cb.run_or_explain(student, reference, "MobileNetV1", (), "logits_check", shape)
    check(not probs["looks_like_probabilities"], "The output rows are probabilities (non-negative, summing to 1)",
          expected="raw logits", found="softmax output",
          hint="Remove the softmax at the end: nn.CrossEntropyLoss expects logits and applies log-softmax itself.",
          cause="MobileNetV1.softmax_output")
    leak = cb.run(student.build("MobileNetV1"), "batch_independence", input_shape=shape)["leak"]
    check(leak == 0.0, "In eval mode the first sample's output depends on the other samples of the batch",
          expected="no dependence", found=f"gradient {leak:.3g} reaching other samples",
          hint="Samples interact through a BatchNorm that normalises with the batch's own statistics in eval mode "
               "(no running statistics), or through a flatten that mixes samples: keep the batch dimension.")
    flow = cb.run(student.build("MobileNetV1"), "gradient_flow", input_shape=shape)
    check(not flow["without_grad"], "Some parameters get no gradient, so they never learn",
          expected="a gradient for every parameter", found=", ".join(flow["without_grad"][:5]),
          hint="Every layer created in __init__ must be used in forward.", cause="MobileNetV1.unused_layer")


@grade("MobileNetV1", "training")
@pytest.mark.compares_outputs
def test_mobilenet_overfits(student, reference, artifacts):
    """MobileNetV1 can overfit one small batch (Adam, lr 1e-3, train mode)"""
    params = {k: v for k, v in OVERFIT.items() if k != "input_shape"}
    want = cb.run(reference.build("MobileNetV1"), "overfit", **OVERFIT)
    got = cb.run_or_explain(student, reference, "MobileNetV1", (), "overfit", OVERFIT["input_shape"], **params)
    cb.check_overfit("MobileNetV1", got, want, artifacts)


@grade("MobileNetV1", "training")
def test_mobilenet_trains_on_gpu(student, reference):
    """MobileNetV1 trains on a GPU at full size (32 x 32, batch 16)"""
    cb.need_cuda()
    params = dict(input_shape=[16, 3, 32, 32], steps=40, lr=1e-3, target_loss=0.1)
    got = cb.cuda_result(cb.run(student.build("MobileNetV1"), "device_overfit", **params), student)
    cb.check_gpu_overfit("MobileNetV1", got)


@grade("MobileNetV1", "device")
def test_mobilenet_meta(student, reference):
    """MobileNetV1 runs on any device (forward on the meta device)"""
    got = cb.run_or_explain(student, reference, "MobileNetV1", (), "meta_forward", [2, 3, 32, 32])
    check_equal(got["shape"], [2, 10], "output shape on the meta device",
                hint="Create tensors in forward from the input (device=x.device), and register tensors as buffers.")


@grade("MobileNetV1", "device")
def test_mobilenet_cuda(student, reference):
    """MobileNetV1 moves to the GPU with .to("cuda") and gives the CPU's outputs there"""
    cb.need_cuda()
    got = cb.cuda_result(cb.run(student.build("MobileNetV1"), "cuda_move", input_shape=[2, 3, 32, 32]), student)
    cb.check_cuda_move("MobileNetV1", got)
