"""ResidualBlock, ResNet, resnet18, NoSkipBlock and WithSkipBlock."""

from __future__ import annotations

import numpy as np
import pytest

import catalogue
import checks_a as ca
import checks_b as cb
from grader.testing import Mistake, check, commas, cuda_not_available, grade

# (in_channels, out_channels, stride): identity, projection for both reasons, and for each reason alone
BLOCK_CONFIGS = [(64, 64, 1), (64, 128, 2), (64, 128, 1), (64, 64, 2)]
BLOCK_INPUT = [2, 64, 8, 8]
NET_INPUT = [2, 3, 32, 32]
OVERFIT = dict(input_shape=[4, 3, 32, 32], steps=10, lr=1e-3, target_loss=0.3)  # on ResNet([1, 1, 1, 1], 10)
OVERFIT_BELOW = 0.3

SHORTCUT_HINT = ("Adding the shortcut needs the main path's shape: when the stride or the channel count changes, "
                 "the shortcut must be projected to the output's shape; otherwise it is the identity.")


def block(impl, *args):
    return impl.build("ResidualBlock", *args)


def block_name(args) -> str:
    return f"ResidualBlock({', '.join(str(a) for a in args)})"


def what_ran_differs(student, reference, args, mode: str) -> str | None:
    """A mismatch no catalogued mistake explains: which layers and operations ran differently."""
    try:
        mine = ca.probe(block(student, *args), "anatomy", input_shape=BLOCK_INPUT, mode=mode)
    except Exception:  # noqa: BLE001 - an explanation only
        return None
    theirs = ca.probe(block(reference, *args), "anatomy", input_shape=BLOCK_INPUT, mode=mode)
    return " ".join(cb.diagnose(mine, theirs)) or None


# =========================================================================== ResidualBlock

@grade("ResidualBlock", "api")
def test_block_builds(student):
    """ResidualBlock(64, 128, 2) and ResidualBlock(64, 64) build nn.Modules from positional arguments"""
    for args in [(64, 128, 2), (64, 64)]:
        info = ca.probe(block(student, *args), "describe")
        check(info["kind"] == "module", f"{block_name(args)} is not an nn.Module", expected="an nn.Module subclass",
              found=info["type"], hint="Derive the class from nn.Module and call super().__init__() first.")


@grade("ResidualBlock", "shape")
@pytest.mark.compares_outputs
def test_block_shapes(student, reference):
    """ResidualBlock keeps the size at stride 1 and halves it (rounding up) at stride 2, for batches of 1 to 3"""
    cases = [((64, 64, 1), [2, 64, 8, 8]), ((64, 128, 2), [3, 64, 8, 8]), ((64, 128, 1), [1, 64, 5, 5]),
             ((64, 64, 2), [2, 64, 7, 7])]
    for args, shape in cases:
        want = ca.probe(block(reference, *args), "forward_shape", input_shape=shape)["shape"]
        got = ca.explain_error(
            lambda: ca.probe(block(student, *args), "forward_shape", input_shape=shape)["shape"],
            f"{block_name(args)} failed on an input of shape {ca.shape_text(shape)}", SHORTCUT_HINT)
        if got != want:
            if len(got) == 4 and got[1] != want[1]:
                hint = "The output must have out_channels channels."
            elif len(got) == 4 and got[2] > want[2]:
                hint = "The stride is not applied: the output keeps the input's size where it should shrink."
            elif len(got) == 4 and got[2] < want[2]:
                hint = "The output is smaller than expected: a 3x3 convolution without padding, or the stride applied twice."
            else:
                hint = "The block returns a 4-d feature map (N, out_channels, H', W')."
            raise Mistake(f"{block_name(args)} on an input of shape {ca.shape_text(shape)}: wrong output shape",
                          expected=ca.shape_text(want), found=ca.shape_text(got), hint=hint)


def _block_params(student, reference, args):
    cin, cout, stride = args
    needs = stride != 1 or cin != cout
    reason = ("the stride is 2" if stride != 1 and cin == cout else
              f"the channels change ({cin} -> {cout})" if stride == 1 else
              f"the stride is 2 and the channels change ({cin} -> {cout})")
    catalogue = []
    if needs:
        catalogue += [
            (ca.residual_block(cin, cout, stride, projection="never"),
             f"There is no projection shortcut, yet {reason}: the shortcut must be projected whenever the stride "
             f"or the channel count changes.", "ResidualBlock.projection_missing"),
            (ca.residual_block(cin, cout, stride, proj_bn=False),
             "The projection shortcut has no BatchNorm2d after its 1x1 convolution.", "ResidualBlock.projection_no_bn"),
            (ca.residual_block(cin, cout, stride, proj_kernel=3),
             "The projection uses a 3x3 kernel; it is a 1x1 convolution.", "ResidualBlock.projection_3x3"),
        ]
    else:
        catalogue.append((ca.residual_block(cin, cout, stride, projection="always"),
                          f"A 1x1 projection is built even though stride is 1 and the channels match "
                          f"(+{commas(cin * cout + 2 * cout)} parameters); the shortcut must be the identity here.",
                          "ResidualBlock.projection_always"))
    catalogue += [(ca.residual_block(cin, cout, stride, bias=True),
                   "The convolutions have bias=True; a BatchNorm right after a convolution makes its bias redundant: "
                   "use bias=False.", "ResidualBlock.conv_bias"),
                  (ca.residual_block(cin, cout, stride) + ca.Counter({"Conv2d": 2 * cout}),
                   "The two 3x3 convolutions have bias=True; a BatchNorm right after a convolution makes its bias "
                   "redundant: use bias=False.", "ResidualBlock.conv_bias"),
                  (ca.residual_block(cin, cout, stride, bn_count=0, proj_bn=False),
                   "No BatchNorm2d has parameters: the normalisation is left out, or replaced by one without "
                   "parameters such as InstanceNorm2d; the block uses BatchNorm2d.", "ResidualBlock.wrong_norm_layer"),
                  (ca.residual_block(cin, cout, stride, bn_count=1),
                   "One BatchNorm2d is missing from the main path: conv1 and conv2 each need their own "
                   "(is bn1 used twice?).", "ResidualBlock.unused_layer")]
    got = ca.probe(block(student, *args), "param_count")
    want = ca.probe(block(reference, *args), "param_count")
    ca.check_params(got, want, block_name(args), catalogue,
                    fallback="Count the layers by type against the docstring: the difference by layer type above "
                             "says which kind of layer has too many or too few weights.")


@grade("ResidualBlock", "params")
def test_block_params_identity(student, reference):
    """ResidualBlock(64, 64, 1) has 73,984 parameters: no projection when the shapes match"""
    _block_params(student, reference, (64, 64, 1))


@grade("ResidualBlock", "params")
def test_block_params_projection(student, reference):
    """ResidualBlock(64, 128, 2) has 230,144 parameters: a 1x1 projection with BatchNorm"""
    _block_params(student, reference, (64, 128, 2))


@grade("ResidualBlock", "params")
def test_block_params_channels_only(student, reference):
    """ResidualBlock(64, 128, 1) has 230,144 parameters: it projects when only the channels change"""
    _block_params(student, reference, (64, 128, 1))


@grade("ResidualBlock", "params")
def test_block_params_stride_only(student, reference):
    """ResidualBlock(64, 64, 2) has 78,208 parameters: it projects when only the stride changes"""
    _block_params(student, reference, (64, 64, 2))


@grade("ResidualBlock", "skip")
@pytest.mark.compares_outputs
def test_identity_shortcut(student, reference):
    """With its 3x3 convolutions silenced, ResidualBlock(64, 64) returns relu(x): the identity shortcut carries the input"""
    shape = [2, 64, 6, 6]
    r = ca.explain_error(lambda: ca.probe(block(student, 64, 64), "residual_zeroed", input_shape=shape),
                         "ResidualBlock(64, 64) failed with its residual branch set to zero", SHORTCUT_HINT)
    x, y = ca.probe_input(r, shape, reference), r["output"]
    relu_x = np.maximum(x, 0)
    if ca.close(y, relu_x, atol=1e-10):
        return
    cause = None
    if y.shape != x.shape:
        hint = "With stride 1 and equal channels the output has the input's shape."
    elif ca.close(y, x, atol=1e-10):
        hint, cause = "The output is x itself, not relu(x): the ReLU must come after the addition.", "ResidualBlock.no_final_relu"
    elif ca.close(y, 2 * relu_x, atol=1e-10) or ca.close(y, np.maximum(2 * x, 0), atol=1e-10):
        hint, cause = "The input is added twice.", "ResidualBlock.skip_twice"
    elif not np.any(y):
        hint, cause = "Nothing of the input reaches the output: the skip connection is missing.", "ResidualBlock.no_skip"
    else:
        hint = "With the convolutions silenced something other than the identity shortcut still changes the input."
    raise Mistake("With the residual branch outputting zero, ResidualBlock(64, 64) should return relu(x)",
                  expected="relu(x)", found=f"values differing from relu(x) by up to {ca.max_difference(y, relu_x):.3g}"
                  if y.shape == x.shape else f"an output of shape {ca.shape_text(y.shape)}",
                  hint=hint, cause=cause)


@grade("ResidualBlock", "skip")
@pytest.mark.compares_outputs
def test_projection_shortcut(student, reference):
    """With their 3x3 convolutions silenced, projecting blocks return relu(BN(Conv1x1(x))): the projection shortcut"""
    for args, shape in [((64, 128, 2), [2, 64, 6, 6]), ((64, 128, 1), [2, 64, 5, 5]), ((64, 64, 2), [2, 64, 7, 7])]:
        want = ca.probe(block(reference, *args), "residual_zeroed", input_shape=shape)["output"]
        got = ca.explain_error(lambda: ca.probe(block(student, *args), "residual_zeroed", input_shape=shape)["output"],
                               f"{block_name(args)} failed with its residual branch set to zero", SHORTCUT_HINT)
        if ca.close(got, want):
            continue
        if got.shape != want.shape:
            hint = SHORTCUT_HINT
        elif not np.any(got):
            hint = ("Nothing reaches the output through the shortcut: it is missing, or it is a 3x3 convolution "
                    "instead of a 1x1.")
        else:
            hint = ("What the shortcut computes from the block's original input differs from a 1x1 projection "
                    "followed by its BatchNorm.")
        raise Mistake(f"{block_name(args)}: the shortcut alone does not give the expected output",
                      expected=f"relu(BN(Conv1x1 stride {args[2]}(x))), shape {ca.shape_text(want.shape)}",
                      found=f"shape {ca.shape_text(got.shape)}" + (
                          f", largest difference {ca.max_difference(got, want):.3g}" if got.shape == want.shape else ""),
                      hint=hint)


@grade("ResidualBlock", "skip")
@pytest.mark.compares_outputs
def test_gradient_through_shortcut(student, reference):
    """The gradient of ResidualBlock(64, 64) reaches its input through the shortcut even when the residual branch is zero"""
    shape = [2, 64, 6, 6]
    want = ca.probe(block(reference, 64, 64), "residual_zeroed", input_shape=shape)["input_grad"]
    got = ca.explain_error(lambda: ca.probe(block(student, 64, 64), "residual_zeroed", input_shape=shape)["input_grad"],
                           "ResidualBlock(64, 64) failed while computing gradients", ca.INPLACE_HINT)
    if ca.close(got, want):
        return
    cause = None
    if got.shape == want.shape and not np.any(got):
        hint = ("No gradient flows back through the shortcut: it is missing or cut off from autograd "
                "(.detach(), .data or torch.no_grad() around it).")
    elif got.shape == want.shape and ca.close(got, 2 * want):
        hint, cause = "The gradient through the shortcut is doubled: the input is added twice.", "ResidualBlock.skip_twice"
    else:
        hint = "The shortcut must be the identity here, added once, with one ReLU after the addition."
    raise Mistake("The gradient reaching the input through the identity shortcut is wrong",
                  expected=f"1 for every positive input value ({commas(int(want.sum()))} in total)",
                  found=f"{float(got.sum()):,.6g} in total", hint=hint, cause=cause)


@grade("ResidualBlock", "structure")
@pytest.mark.compares_outputs
def test_block_matches_eval(student, reference):
    """In eval mode, ResidualBlock computes relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) in all four configurations"""
    for args in BLOCK_CONFIGS:
        want = ca.probe(block(reference, *args), "keyed_forward", input_shape=BLOCK_INPUT, mode="eval")["output"]
        got = ca.explain_error(
            lambda: ca.probe(block(student, *args), "keyed_forward", input_shape=BLOCK_INPUT, mode="eval")["output"],
            f"{block_name(args)} failed in eval mode", SHORTCUT_HINT)
        if ca.close(got, want):
            continue
        ca.check_same_output(got, want, f"{block_name(args)} in eval mode",
                             hint=what_ran_differs(student, reference, args, "eval"))


@grade("ResidualBlock", "structure")
@pytest.mark.compares_outputs
def test_block_matches_train(student, reference, artifacts):
    """In train mode (BatchNorm with batch statistics), ResidualBlock matches the specification"""
    for args in [(64, 128, 2), (64, 64, 1)]:
        want = ca.probe(block(reference, *args), "keyed_forward", input_shape=BLOCK_INPUT, mode="train")["output"]
        got = ca.explain_error(
            lambda: ca.probe(block(student, *args), "keyed_forward", input_shape=BLOCK_INPUT, mode="train")["output"],
            f"{block_name(args)} failed in train mode", SHORTCUT_HINT)
        if not ca.close(got, want):
            where = ca.layer_table(block(student, *args), block(reference, *args), "ResidualBlock", BLOCK_INPUT,
                                   artifacts)
            ca.check_same_output(got, want, f"{block_name(args)} in train mode",
                                 hint=ca.join_hints(what_ran_differs(student, reference, args, "train"), where))
    ca.layer_table(block(student, 64, 128, 2), block(reference, 64, 128, 2), "ResidualBlock", BLOCK_INPUT, artifacts)


@grade("ResidualBlock", "structure")
@pytest.mark.compares_outputs
def test_block_running_statistics(student, reference):
    """After three training-mode forwards, ResidualBlock's eval output uses the running statistics BatchNorm kept"""
    args = (64, 128, 2)
    want = ca.probe(block(reference, *args), "keyed_forward_after_updates", input_shape=BLOCK_INPUT)["output"]
    got = ca.explain_error(lambda: ca.probe(block(student, *args), "keyed_forward_after_updates",
                                            input_shape=BLOCK_INPUT)["output"],
                           f"{block_name(args)} failed while training or evaluating", None)
    ca.check_same_output(got, want, f"{block_name(args)} in eval mode after three training-mode forwards",
                         hint="The outputs agree before training but not after: BatchNorm's running statistics were "
                              "updated differently (its momentum or track_running_stats), or eval mode does not use "
                              "them.")


@grade("ResidualBlock", "structure")
def test_block_every_parameter_learns(student, reference):
    """Every parameter of ResidualBlock receives a gradient, and backward works from a non-leaf input"""
    for args in [(64, 64, 1), (64, 128, 2)]:
        r = ca.explain_error(lambda: ca.probe(block(student, *args), "gradient_flow", input_shape=BLOCK_INPUT),
                             f"{block_name(args)}: backward failed", None)
        if r["without_grad"]:
            unused = Mistake(f"{block_name(args)}: some parameters receive no gradient",
                             expected="every parameter is used in forward", found=", ".join(r["without_grad"][:6]),
                             hint=f"These layers are built in __init__ but never run in forward "
                                  f"({', '.join(r['without_grad'][:6])}), usually because another layer runs in their "
                                  f"place (bn1 instead of bn2, conv1 twice).", cause="ResidualBlock.unused_layer")
            # A layer left unused is often the symptom of a catalogued mistake (a shortcut never added).
            entry = catalogue.identify(ca.probe, student, reference, "ResidualBlock")
            raise catalogue.name(unused, entry) if entry else unused
        check(r["input_grad"] > 0, f"{block_name(args)}: no gradient reaches the input",
              expected="a non-zero gradient", found="zero", hint="Do not detach the input or the shortcut.",
              cause="ResidualBlock.detached")


@grade("ResidualBlock", "structure")
def test_block_leaves_input_unchanged(student):
    """ResidualBlock's forward leaves its input tensor unchanged, in eval and in train mode"""
    for args in [(64, 64, 1), (64, 128, 2)]:
        for mode in ("eval", "train"):
            r = ca.explain_error(lambda: ca.probe(block(student, *args), "input_mutation", input_shape=BLOCK_INPUT,
                                                  mode=mode), f"{block_name(args)} failed in {mode} mode", None)
            check(not r["mutated"], f"{block_name(args)} modified its input in place ({mode} mode)",
                  expected="x unchanged after forward", found="x changed", hint=ca.INPLACE_HINT,
                  cause="ResidualBlock.inplace_on_input")


@grade("ResidualBlock", "device")
@pytest.mark.compares_outputs
def test_block_meta_device(student):
    """ResidualBlock runs with every tensor on another device (the meta device): nothing is pinned to the CPU"""
    for args in [(64, 128, 2), (64, 64, 1)]:
        try:
            ca.probe(block(student, *args), "forward_shape", input_shape=BLOCK_INPUT)
            on_cpu = True
        except Exception:  # noqa: BLE001 - a forward that fails on the CPU too is not a device mistake
            on_cpu = False
        r = ca.explain_error(lambda: ca.probe(block(student, *args), "meta_forward", input_shape=BLOCK_INPUT),
                             f"{block_name(args)} fails once the model and input are moved off the CPU", ca.DEVICE_HINT,
                             cause="ResidualBlock.tensor_off_device" if on_cpu else None)
        check(r["device"] == "meta", f"{block_name(args)}: the output is not on the input's device",
              expected="meta", found=r["device"], hint=ca.DEVICE_HINT, cause="ResidualBlock.tensor_off_device")


@grade("ResidualBlock", "device")
def test_block_cuda(student, reference, cuda_gpu):
    """ResidualBlock(64, 128, 2) runs on a CUDA GPU and gives the CPU's result there"""
    want = ca.probe(block(reference, 64, 128, 2), "keyed_forward", input_shape=BLOCK_INPUT, mode="eval")["output"]
    r = ca.explain_error(lambda: ca.probe(block(student, 64, 128, 2), "cuda_forward", input_shape=BLOCK_INPUT),
                         "ResidualBlock(64, 128, 2) fails on the GPU", ca.DEVICE_HINT)
    if not r["available"]:
        cuda_not_available(student)
    check(ca.close(r["output"], want, rtol=1e-5, atol=1e-7), "ResidualBlock(64, 128, 2) gives another result on the GPU",
          expected="the CPU result", found=f"largest difference {ca.max_difference(r['output'], want):.3g}"
          if r["output"].shape == want.shape else ca.shape_text(r["output"].shape), hint=ca.DEVICE_HINT)


# =========================================================================== ResNet

def resnet_catalogue(blocks, num_classes):
    more = [n + 1 for n in blocks]
    fewer = [max(n - 1, 0) for n in blocks]
    too_few = "Every stage has one block too few: a stage has num_blocks blocks, the downsampling one included."
    return [
        (ca.resnet(blocks, num_classes, stem_kernel=7),
         "The stem is a 7x7 convolution (the ImageNet stem); for 32x32 images the stem is a 3x3 convolution at "
         "stride 1, with no max-pool.", "ResNet.imagenet_stem"),
        (ca.resnet(blocks, num_classes, stem_bias=True), "The stem convolution has a bias; use bias=False before "
                                                         "BatchNorm.", "ResNet.stem_bias"),
        (ca.resnet(blocks, num_classes, bias=True),
         "The block convolutions have bias=True; a BatchNorm right after a convolution makes its bias redundant.",
         "ResidualBlock.conv_bias"),
        (ca.resnet(blocks, num_classes, stem_bias=True, bias=True),
         "Every convolution has bias=True; before a BatchNorm use bias=False.", "ResNet.stem_bias"),
        (ca.resnet(more, num_classes), "Every stage has one block too many: num_blocks counts the first block too.",
         "ResNet.blocks_per_stage"),
        (ca.resnet(fewer, num_classes), too_few, "ResNet.blocks_per_stage"),
        # the downsampling block is built apart, so a stage of one block keeps it
        (ca.resnet([max(n - 1, 1) for n in blocks], num_classes), too_few, "ResNet.blocks_per_stage"),
        (ca.resnet(blocks, num_classes, proj_bn=False), "The projection shortcuts have no BatchNorm2d.",
         "ResidualBlock.projection_no_bn"),
        (ca.resnet(blocks, num_classes, projection="always"),
         "Every block has a 1x1 projection, even where the shapes match; only the first block of stages 2-4 needs one.",
         "ResidualBlock.projection_always"),
        (ca.resnet(blocks, num_classes, proj_kernel=3), "The projection shortcuts use 3x3 kernels; they are 1x1.",
         "ResidualBlock.projection_3x3"),
        (ca.resnet(blocks, num_classes, projection="never"), "No block has a projection shortcut.",
         "ResidualBlock.projection_missing"),
        (ca.resnet([2, 2, 2, 2], num_classes), "The stages ignore num_blocks_per_stage: always two blocks.",
         "ResNet.blocks_per_stage"),
        (ca.resnet(blocks, 10), "The classifier ignores num_classes: its output size is always 10.",
         "ResNet.num_classes_ignored"),
        (ca.resnet(blocks, num_classes, strides=(2, 2, 2, 1)),
         "The stage strides are 2, 2, 2, 1; they are 1, 2, 2, 2: stage 1 keeps the 32x32 size and each later stage "
         "halves it.", "ResNet.stage_strides"),
        (ca.resnet(blocks, num_classes, strides=(2, 2, 2, 2)),
         "Stage 1 downsamples too; its stride is 1 (only stages 2-4 halve the image).", "ResNet.stage_strides"),
    ]


RESNET_FALLBACK = ("Stem Conv3x3(3 -> 64, bias=False) + BatchNorm2d; stages of 64, 128, 256, 512 channels with "
                   "num_blocks_per_stage[i] ResidualBlocks each; Linear(512, num_classes). If the ResidualBlock tests "
                   "fail too, fix the block first.")
RESNET_HINT = ("Stem conv3x3 (stride 1) -> BN -> ReLU; stage strides 1, 2, 2, 2, only in each stage's first block; "
               "global average pooling, flatten, Linear(512, num_classes). If the ResidualBlock tests fail too, fix the "
               "block first.")


def net(impl, blocks, *more):
    return impl.build("ResNet", list(blocks), *more)


@grade("ResNet", "api")
def test_resnet_builds(student):
    """ResNet([2, 2, 2, 2], 10) and ResNet([1, 1, 1, 1]) build nn.Modules from positional arguments"""
    for args in [([2, 2, 2, 2], 10), ([1, 1, 1, 1],)]:
        info = ca.probe(student.build("ResNet", *args), "describe")
        check(info["kind"] == "module", "ResNet is not an nn.Module", expected="an nn.Module subclass",
              found=info["type"], hint="Derive the class from nn.Module and call super().__init__() first.")


@grade("ResNet", "shape")
def test_resnet_shapes(student):
    """ResNet maps a batch of 32x32 images to (batch, num_classes) logits"""
    for args, shape, want in [(([1, 1, 1, 1],), [2, 3, 32, 32], [2, 10]), (([1, 1, 1, 1], 7), [3, 3, 32, 32], [3, 7]),
                              (([2, 2, 2, 2], 10), [1, 3, 32, 32], [1, 10])]:
        got = ca.explain_error(lambda: ca.probe(student.build("ResNet", *args), "forward_shape", input_shape=shape)["shape"],
                               f"ResNet({', '.join(map(str, args))}) failed on a {ca.shape_text(shape)} batch",
                               "Each stage's first block changes the channels (and stride); the classifier sees the "
                               "512 pooled features: global average pooling, then flatten with the batch dimension kept.")
        if got != want:
            raise Mistake(f"ResNet({', '.join(map(str, args))}) on a {ca.shape_text(shape)} batch: wrong output shape",
                          expected=ca.shape_text(want), found=ca.shape_text(got),
                          hint="Flatten to (N, 512) after global average pooling (torch.flatten(x, 1)) and end with "
                               "Linear(512, num_classes).")


@grade("ResNet", "params")
def test_resnet18_params(student, reference, artifacts):
    """ResNet([2, 2, 2, 2]) has 11,173,962 parameters (ResNet-18 for CIFAR)"""
    got = ca.probe(net(student, [2, 2, 2, 2], 10), "param_count")
    want = ca.probe(net(reference, [2, 2, 2, 2], 10), "param_count")
    _comparison(student, reference, artifacts, got, want)
    ca.check_params(got, want, "ResNet([2, 2, 2, 2], 10)", resnet_catalogue([2, 2, 2, 2], 10), RESNET_FALLBACK)


def _comparison(student, reference, artifacts, got, want):
    """Parameters, FLOPs and inference time of ResNet-18 for the report's comparison table."""
    row = {"model": "ResNet-18", "params": got["total"], "ref_params": want["total"]}
    try:
        row["flops"] = ca.forward_flops(net(student, [2, 2, 2, 2], 10), [1, 3, 32, 32])
        row["ref_flops"] = ca.forward_flops(net(reference, [2, 2, 2, 2], 10), [1, 3, 32, 32])
        row["inference_ms"] = ca.probe(net(student, [2, 2, 2, 2], 10), "inference_time", input_shape=[1, 3, 32, 32],
                                       repeats=3)["ms"]
    except Exception:  # noqa: BLE001 - the comparison is a diagnostic; the tests judge
        pass
    artifacts.setdefault("comparison", []).append(row)


@grade("ResNet", "params")
def test_resnet_params_follow_arguments(student, reference):
    """ResNet([1, 2, 1, 2], 7) has the parameter count its block counts and 7 classes imply"""
    args = ([1, 2, 1, 2], 7)
    got = ca.probe(net(student, *args), "param_count")
    want = ca.probe(net(reference, *args), "param_count")
    ca.check_params(got, want, "ResNet([1, 2, 1, 2], 7)", resnet_catalogue([1, 2, 1, 2], 7), RESNET_FALLBACK)


@grade("ResNet", "structure")
@pytest.mark.compares_outputs
def test_resnet_matches_eval(student, reference, artifacts):
    """In eval mode, ResNet([2, 2, 2, 2]) computes the specified network on 32x32 images"""
    s, r = net(student, [2, 2, 2, 2], 10), net(reference, [2, 2, 2, 2], 10)
    want = ca.probe(r, "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"]
    got = ca.explain_error(lambda: ca.probe(s, "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"],
                           "ResNet([2, 2, 2, 2]) failed in eval mode", RESNET_HINT)
    where = ca.layer_table(s, r, "ResNet", [1, 3, 32, 32], artifacts)
    ca.check_same_output(got, want, "ResNet([2, 2, 2, 2]) in eval mode", hint=ca.join_hints(RESNET_HINT, where))


@grade("ResNet", "structure")
@pytest.mark.compares_outputs
def test_resnet_matches_train(student, reference):
    """In train mode, ResNet([1, 1, 1, 1]) computes the specified network"""
    s, r = net(student, [1, 1, 1, 1], 10), net(reference, [1, 1, 1, 1], 10)
    want = ca.probe(r, "keyed_forward", input_shape=NET_INPUT, mode="train")["output"]
    got = ca.explain_error(lambda: ca.probe(s, "keyed_forward", input_shape=NET_INPUT, mode="train")["output"],
                           "ResNet([1, 1, 1, 1]) failed in train mode", RESNET_HINT)
    ca.check_same_output(got, want, "ResNet([1, 1, 1, 1]) in train mode", hint=RESNET_HINT)


@grade("ResNet", "structure")
def test_resnet_blocks_are_distinct(student):
    """Every block of ResNet([1, 3, 1, 1]) is its own module with its own weights, also in a stage of three blocks"""
    shared = ca.probe(net(student, [1, 3, 1, 1], 10), "shared_modules")["shared"]
    top = [pair for pair in shared if not any(pair[0].startswith(other[0] + ".") for other in shared)]
    check(not top, "ResNet([1, 3, 1, 1]) uses one module object at several places", expected="distinct blocks",
          found="; ".join(f"{a} is the same object as {b}" for a, b in top[:3]),
          hint="Repeating a list ([block] * n) or appending the same block again reuses one object: its weights "
               "are shared, so the stage has fewer parameters than it seems. Build a new block each time.",
          cause="ResNet.shared_block")


@grade("ResNet", "structure")
def test_resnet_gradients_and_logits(student):
    """ResNet uses every parameter, keeps samples independent in eval mode and returns logits, not probabilities"""
    s = net(student, [1, 1, 1, 1], 10)
    r = ca.explain_error(lambda: ca.probe(s, "gradient_flow", input_shape=NET_INPUT),
                         "ResNet([1, 1, 1, 1]): backward failed", ca.INPLACE_HINT)
    check(not r["without_grad"], "ResNet([1, 1, 1, 1]): some parameters receive no gradient",
          expected="every parameter is used in forward", found=", ".join(r["without_grad"][:6]),
          hint="A layer built in __init__ is never used in forward.", cause="ResNet.unused_layer")
    leak = ca.probe(s, "batch_independence", input_shape=[3, 3, 32, 32])["leak"]
    check(leak == 0.0, "ResNet: in eval mode one sample's output depends on the other samples",
          expected="no dependence", found=f"gradient {leak:.3g} reaches the other samples",
          hint="Samples interact through a BatchNorm that normalises with the batch's own statistics in eval mode "
               "(no running statistics), or through a flatten that mixes samples: keep the batch dimension.")
    probs = ca.probe(s, "logits_check", input_shape=[2, 3, 32, 32])["looks_like_probabilities"]
    check(not probs, "ResNet returns probabilities (rows sum to 1)", expected="raw logits", found="softmax output",
          hint="Return the last Linear layer's output: nn.CrossEntropyLoss applies log-softmax itself.",
          cause="ResNet.softmax_output")


@grade("ResNet", "training")
@pytest.mark.compares_outputs
def test_resnet_overfits(student, reference, artifacts):
    """ResNet([1, 1, 1, 1]) starts near ln(10) and overfits one batch of 4 images within 10 Adam steps (train-mode loss)"""
    want = ca.probe(net(reference, [1, 1, 1, 1], 10), "overfit", **OVERFIT)["losses"]
    r = ca.explain_error(lambda: ca.probe(net(student, [1, 1, 1, 1], 10), "overfit", **OVERFIT),
                         "ResNet([1, 1, 1, 1]) failed during training", ca.INPLACE_HINT)
    artifacts.setdefault("loss_curves", {})["ResNet"] = {"student": [float(v) for v in r["losses"]],
                                                         "reference": [float(v) for v in want]}
    ca.loss_curve_check(r["losses"], "ResNet([1, 1, 1, 1])", below=OVERFIT_BELOW, steps=OVERFIT["steps"],
                        start=(1.0, 6.0),
                        hint_plateau="Check that forward returns logits (no softmax) and that every layer is used; "
                                     "the structure tests above name the layer that differs.")


@grade("ResNet", "device")
def test_resnet_meta_device(student):
    """ResNet runs with every tensor on another device (the meta device): nothing is pinned to the CPU"""
    r = ca.explain_error(lambda: ca.probe(net(student, [1, 1, 1, 1], 10), "meta_forward", input_shape=NET_INPUT),
                         "ResNet([1, 1, 1, 1]) fails once the model and input are moved off the CPU", ca.DEVICE_HINT)
    check(r["device"] == "meta", "ResNet: the output is not on the input's device", expected="meta",
          found=r["device"], hint=ca.DEVICE_HINT)


@grade("ResNet", "device")
def test_resnet_cuda(student, reference, cuda_gpu):
    """ResNet([2, 2, 2, 2]) runs on a CUDA GPU and gives the CPU's result there"""
    s, r = net(student, [2, 2, 2, 2], 10), net(reference, [2, 2, 2, 2], 10)
    want = ca.probe(r, "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"]
    got = ca.explain_error(lambda: ca.probe(s, "cuda_forward", input_shape=NET_INPUT),
                           "ResNet([2, 2, 2, 2]) fails on the GPU", ca.DEVICE_HINT)
    if not got["available"]:
        cuda_not_available(student)
    check(ca.close(got["output"], want, rtol=1e-5, atol=1e-7), "ResNet([2, 2, 2, 2]) gives another result on the GPU",
          expected="the CPU result", found="different values" if got["output"].shape == want.shape
          else ca.shape_text(got["output"].shape), hint=ca.DEVICE_HINT)


# =========================================================================== resnet18

@grade("resnet18", "api")
def test_resnet18_returns_module(student):
    """resnet18() and resnet18(7) return nn.Modules"""
    for args in [(), (7,)]:
        info = ca.probe(student.build("resnet18", *args), "describe")
        check(info["kind"] == "module", f"resnet18({', '.join(map(str, args))}) does not return an nn.Module",
              expected="a ResNet", found=info["type"], hint="resnet18 returns the model it builds.")


@grade("resnet18", "params")
def test_resnet18_is_two_blocks_per_stage(student):
    """resnet18(7) has as many parameters as your ResNet([2, 2, 2, 2], 7): two blocks per stage, num_classes passed on"""
    got = ca.probe(student.build("resnet18", 7), "param_count")
    want = ca.probe(net(student, [2, 2, 2, 2], 7), "param_count")
    if got["total"] == want["total"]:
        return
    ten = ca.probe(net(student, [2, 2, 2, 2], 10), "param_count")["total"]
    hint, cause = (("num_classes is not passed on to ResNet.", "resnet18.num_classes_ignored") if got["total"] == ten
                   else ("ResNet-18 has two residual blocks in each of its four stages.", "resnet18.blocks"))
    raise Mistake("resnet18(7) is not ResNet([2, 2, 2, 2], 7)", expected=f"{commas(want['total'])} parameters",
                  found=f"{commas(got['total'])} parameters", hint=hint, cause=cause)


@grade("resnet18", "structure")
@pytest.mark.compares_outputs
def test_resnet18_computes_resnet(student):
    """resnet18() computes the same function as your ResNet([2, 2, 2, 2], 10)"""
    want = ca.probe(net(student, [2, 2, 2, 2], 10), "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"]
    got = ca.probe(student.build("resnet18"), "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"]
    ca.check_same_output(got, want, "resnet18()", hint="resnet18 builds the four-stage ResNet with two blocks per "
                                                       "stage and changes nothing else.")


# =========================================================================== NoSkipBlock and WithSkipBlock

STACK = dict(depth=12, input_shape=[2, 4, 8, 8])


def _two_conv_shapes(student, name):
    for channels, shape in [(16, [2, 16, 8, 8]), (3, [1, 3, 5, 5])]:
        got = ca.probe(student.build(name, channels), "forward_shape", input_shape=shape)["shape"]
        check(got == shape, f"{name}({channels}) on a {ca.shape_text(shape)} input: wrong output shape",
              expected=ca.shape_text(shape), found=ca.shape_text(got),
              hint="Both convolutions map channels to channels with a 3x3 kernel and padding=1.")


def _two_conv_params(student, reference, name):
    got = ca.probe(student.build(name, 16), "param_count")
    want = ca.probe(reference.build(name, 16), "param_count")
    catalogue = [({"Conv2d": 2 * 16 * 16 * 9}, "The convolutions have no bias; these blocks keep the default bias=True "
                                               "(there is no BatchNorm).", f"{name}.conv_no_bias"),
                 ({"Conv2d": 16 * 16 * 9 + 16}, "There is only one convolution; the block has two.",
                  f"{name}.missing_conv")]
    ca.check_params(got, want, f"{name}(16)", catalogue, fallback="Two Conv2d(channels, channels, 3, padding=1) layers.")


def _two_conv_equivalence(student, reference, name, formula):
    shape = [2, 8, 6, 6]
    want = ca.probe(reference.build(name, 8), "keyed_forward", input_shape=shape)["output"]
    got = ca.probe(student.build(name, 8), "keyed_forward", input_shape=shape)["output"]
    ca.check_same_output(got, want, f"{name}(8)", hint=f"{name} computes {formula}.")


@grade("NoSkipBlock", "shape")
def test_noskip_shapes(student):
    """NoSkipBlock keeps the shape of its input"""
    _two_conv_shapes(student, "NoSkipBlock")


@grade("NoSkipBlock", "params")
def test_noskip_params(student, reference):
    """NoSkipBlock(16) has 4,640 parameters: two 3x3 convolutions with bias"""
    _two_conv_params(student, reference, "NoSkipBlock")


@grade("NoSkipBlock", "structure")
@pytest.mark.compares_outputs
def test_noskip_matches(student, reference):
    """NoSkipBlock computes relu(conv2(relu(conv1(x))))"""
    _two_conv_equivalence(student, reference, "NoSkipBlock", "relu(conv2(relu(conv1(x)))), with nothing added back")


@grade("NoSkipBlock", "skip")
def test_noskip_has_no_shortcut(student, reference):
    """With its convolutions silenced, NoSkipBlock outputs zeros: it has no skip connection"""
    r = ca.probe(student.build("NoSkipBlock", 8), "residual_zeroed", input_shape=[2, 8, 6, 6])
    ca.probe_input(r, [2, 8, 6, 6], reference)
    y = r["output"]
    check(not np.any(y), "NoSkipBlock lets its input through although it is the plain block",
          expected="zeros when both convolutions output zero", found=f"mean |y| {np.abs(y).mean():.3g}",
          hint="NoSkipBlock is the comparison block without a skip connection: do not add x back.",
          cause="NoSkipBlock.adds_input")


@grade("NoSkipBlock", "skip")
@pytest.mark.compares_outputs
def test_noskip_gradient_vanishes(student, reference):
    """Through 12 stacked NoSkipBlocks the first block receives a vanishing share of the gradient"""
    r = ca.probe(student.build("NoSkipBlock", 4), "stack_gradient", **STACK)["block_grad_norms"]
    ratio = float(r[0] / r[-1]) if r[-1] > 0 else 0.0
    check(ratio < 1e-3, "In a deep stack of NoSkipBlocks the gradient does not vanish",
          expected="first-block gradient below 0.1% of the last block's", found=f"{ratio:.3g} times the last block's",
          hint="NoSkipBlock has no shortcut, so the gradient shrinks at every block; adding x back prevents that.")


@grade("WithSkipBlock", "shape")
def test_withskip_shapes(student):
    """WithSkipBlock keeps the shape of its input"""
    _two_conv_shapes(student, "WithSkipBlock")


@grade("WithSkipBlock", "params")
def test_withskip_params(student, reference):
    """WithSkipBlock(16) has 4,640 parameters: the skip connection itself is free"""
    _two_conv_params(student, reference, "WithSkipBlock")


@grade("WithSkipBlock", "structure")
@pytest.mark.compares_outputs
def test_withskip_matches(student, reference):
    """WithSkipBlock computes relu(conv2(relu(conv1(x)))) + x"""
    _two_conv_equivalence(student, reference, "WithSkipBlock", "relu(conv2(relu(conv1(x)))) + x, with no ReLU after the addition")


@grade("WithSkipBlock", "skip")
def test_withskip_returns_input(student, reference):
    """With its convolutions silenced, WithSkipBlock returns its input unchanged: the skip connection"""
    r = ca.probe(student.build("WithSkipBlock", 8), "residual_zeroed", input_shape=[2, 8, 6, 6])
    x, y = ca.probe_input(r, [2, 8, 6, 6], reference), r["output"]
    if ca.close(y, x, atol=1e-12):
        return
    cause = None
    if y.shape == x.shape and ca.close(y, np.maximum(x, 0)):
        hint, cause = "A ReLU is applied after the addition; nothing follows the addition.", "WithSkipBlock.relu_after_add"
    elif y.shape == x.shape and not np.any(y):
        hint, cause = "The input is never added back to the output of the two convolutions.", "WithSkipBlock.no_skip"
    elif y.shape == x.shape and ca.close(y, 2 * x):
        hint, cause = "The input is added twice.", "WithSkipBlock.skip_twice"
    else:
        hint = "Keep the original input and add it, unchanged, to the result of the two convolutions."
    raise Mistake("With both convolutions outputting zero, WithSkipBlock should return x", expected="x",
                  found=f"values differing from x by up to {ca.max_difference(y, x):.3g}" if y.shape == x.shape
                  else ca.shape_text(y.shape), hint=hint, cause=cause)


@grade("WithSkipBlock", "skip")
@pytest.mark.compares_outputs
def test_withskip_gradient_flows(student, reference):
    """Through 12 stacked WithSkipBlocks the first block receives as much gradient as the reference's does"""
    want = ca.probe(reference.build("WithSkipBlock", 4), "stack_gradient", **STACK)["block_grad_norms"]
    got = ca.probe(student.build("WithSkipBlock", 4), "stack_gradient", **STACK)["block_grad_norms"]
    ratio = float(got[0] / got[-1]) if got[-1] > 0 else 0.0
    ref_ratio = float(want[0] / want[-1])
    if ca.close(got, want, rtol=1e-5):
        return
    if ratio < 1e-3:
        hint = "The gradient vanishes as in the plain stack: the input is not added back."
    else:
        hint = "WithSkipBlock returns relu(conv2(relu(conv1(x)))) + x: the skip adds the unchanged input once."
    raise Mistake("The gradient reaching each block of a 12-block WithSkipBlock stack differs from the specification",
                  expected=f"first block / last block gradient = {ref_ratio:.3g}", found=f"{ratio:.3g}", hint=hint)
