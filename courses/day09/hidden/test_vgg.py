"""VGGBlock and SimplifiedVGG."""

from __future__ import annotations

import pytest

import checks_a as ca
from grader.testing import Mistake, check, cuda_not_available, grade

NET_INPUT = [2, 3, 32, 32]
# Eval mode: VGG has no BatchNorm, so this is train mode with every dropout off (F.dropout too).
OVERFIT = dict(input_shape=[4, 3, 32, 32], steps=20, lr=1e-4, kaiming=True, dropout_off=True, target_loss=0.3,
               mode="eval")
OVERFIT_BELOW = 0.3
BLOCK_HINT = ("num_convs times Conv2d(3x3, padding=1) -> ReLU, the first conv from in_channels to out_channels and "
              "the others from out_channels to out_channels, then one MaxPool2d(kernel_size=2, stride=2).")
VGG_HINT = ("Blocks VGGBlock(3, 64, 2), VGGBlock(64, 128, 2), VGGBlock(128, 256, 3), VGGBlock(256, 512, 3); flatten "
            "each sample to 2048 features; Linear(2048, 512) -> ReLU -> Dropout -> Linear(512, 512) -> ReLU -> Dropout "
            "-> Linear(512, num_classes). If the VGGBlock tests fail too, fix the block first.")


def vblock(impl, *args):
    return impl.build("VGGBlock", *args)


def vgg(impl, *args):
    return impl.build("SimplifiedVGG", *args)


def block_name(args) -> str:
    return f"VGGBlock({', '.join(map(str, args))})"


def vgg_name(args) -> str:
    return f"SimplifiedVGG({', '.join(map(str, args))})"


# =========================================================================== VGGBlock

@grade("VGGBlock", "api")
def test_block_builds(student):
    """VGGBlock(3, 64, 2) and VGGBlock(64, 128, 3) build nn.Modules from positional arguments"""
    for args in [(3, 64, 2), (64, 128, 3)]:
        info = ca.probe(vblock(student, *args), "describe")
        check(info["kind"] == "module", f"{block_name(args)} is not an nn.Module", expected="an nn.Module subclass",
              found=info["type"], hint="Derive the class from nn.Module and call super().__init__() first.")


@grade("VGGBlock", "shape")
@pytest.mark.compares_outputs
def test_block_shapes(student, reference):
    """VGGBlock halves the image (rounding down) and outputs out_channels, for 1 to 3 convolutions and odd sizes"""
    for args, shape in [((3, 64, 2), [2, 3, 32, 32]), ((64, 128, 3), [1, 64, 9, 9]), ((8, 16, 1), [3, 8, 6, 6])]:
        want = ca.probe(vblock(reference, *args), "forward_shape", input_shape=shape)["shape"]
        got = ca.explain_error(lambda: ca.probe(vblock(student, *args), "forward_shape", input_shape=shape)["shape"],
                               f"{block_name(args)} failed on an input of shape {ca.shape_text(shape)}",
                               "Only the first convolution takes in_channels; after it, the channels are out_channels "
                               "(update the running channel count inside the loop). " + BLOCK_HINT)
        if got == want:
            continue
        hint = BLOCK_HINT
        if len(got) == 4 and got[1] == want[1]:
            if got[2] == shape[2]:
                hint = "The max-pool is missing: end the block with MaxPool2d(kernel_size=2, stride=2)."
            elif got[2] < want[2] and args[2] > 1 and got[2] == shape[2] // 2 ** args[2]:
                hint = "The block pools after every convolution; pool once, after the last conv + ReLU."
            elif got[2] < want[2]:
                hint = "The convolutions need padding=1 to keep the size; only the max-pool halves it."
        raise Mistake(f"{block_name(args)} on an input of shape {ca.shape_text(shape)}: wrong output shape",
                      expected=ca.shape_text(want), found=ca.shape_text(got), hint=hint)


def _block_catalogue(cin, cout, n):
    return [
        (ca.vgg_block(cin, cout, n, update=False),
         "Every convolution maps in_channels to out_channels: after the first one the input has out_channels "
         "channels (update the channel count in the loop).", "VGGBlock.in_channels_not_updated"),
        (ca.vgg_block(cin, cout, n, bias=False), "The convolutions have no bias; VGG has no BatchNorm, so they keep "
                                                  "the default bias=True.", "VGGBlock.conv_no_bias"),
        (ca.vgg_block(cin, cout, n) + ca.Counter({"BatchNorm2d": 2 * cout * n}),
         "A BatchNorm follows each convolution; the lesson's VGG has none.", "VGGBlock.extra_batchnorm"),
        (ca.vgg_block(cin, cout, n + 1), "There is one convolution too many: the block has exactly num_convs.",
         "VGGBlock.num_convs"),
        (ca.vgg_block(cin, cout, max(n - 1, 0)), "There is one convolution too few: the block has exactly num_convs.",
         "VGGBlock.num_convs"),
    ]


def _block_params(student, reference, args):
    got = ca.probe(vblock(student, *args), "param_count")
    want = ca.probe(vblock(reference, *args), "param_count")
    ca.check_params(got, want, block_name(args), _block_catalogue(*args), fallback=BLOCK_HINT)


@grade("VGGBlock", "params")
def test_block_params_two_convs(student, reference):
    """VGGBlock(3, 64, 2) has 38,720 parameters"""
    _block_params(student, reference, (3, 64, 2))


@grade("VGGBlock", "params")
def test_block_params_three_convs(student, reference):
    """VGGBlock(64, 128, 3) has 369,024 parameters"""
    _block_params(student, reference, (64, 128, 3))


@grade("VGGBlock", "structure")
@pytest.mark.compares_outputs
def test_block_matches(student, reference, artifacts):
    """VGGBlock computes num_convs x (conv3x3 -> ReLU) then a 2x2 max-pool"""
    for args, shape in [((3, 64, 2), [2, 3, 16, 16]), ((64, 128, 3), [2, 64, 8, 8]), ((8, 16, 1), [2, 8, 6, 6])]:
        want = ca.probe(vblock(reference, *args), "keyed_forward", input_shape=shape)["output"]
        got = ca.explain_error(lambda: ca.probe(vblock(student, *args), "keyed_forward", input_shape=shape)["output"],
                               f"{block_name(args)} failed", BLOCK_HINT)
        if ca.close(got, want):
            continue
        where = ca.layer_table(vblock(student, *args), vblock(reference, *args), "VGGBlock", shape, artifacts)
        hint = BLOCK_HINT
        if got.shape == want.shape and (got < 0).any() and not (want < 0).any():
            hint = "The output has negative values: a ReLU is missing (after the last convolution too)."
        ca.check_same_output(got, want, block_name(args), hint=ca.join_hints(hint, where))
    ca.layer_table(vblock(student, 3, 64, 2), vblock(reference, 3, 64, 2), "VGGBlock", [2, 3, 16, 16], artifacts)


@grade("VGGBlock", "structure")
def test_block_every_parameter_learns(student):
    """Every parameter of VGGBlock(64, 128, 3) receives a gradient, and its input is left unchanged"""
    r = ca.explain_error(lambda: ca.probe(vblock(student, 64, 128, 3), "gradient_flow", input_shape=[2, 64, 8, 8]),
                         "VGGBlock(64, 128, 3): backward failed",
                         "An in-place operation changed a tensor autograd needs; only use ReLU(inplace=True) on "
                         "a convolution's output.")
    check(not r["without_grad"], "VGGBlock(64, 128, 3): some parameters receive no gradient",
          expected="every parameter is used in forward", found=", ".join(r["without_grad"][:6]),
          hint="A layer built in __init__ is never used in forward.", cause="VGGBlock.unused_layer")
    mutated = ca.probe(vblock(student, 64, 128, 3), "input_mutation", input_shape=[2, 64, 8, 8])["mutated"]
    check(not mutated, "VGGBlock modified its input in place", expected="x unchanged after forward",
          found="x changed", hint="Do not apply an in-place ReLU (or x += ...) to the block's input itself.",
          cause="VGGBlock.inplace_on_input")


# =========================================================================== SimplifiedVGG

@grade("SimplifiedVGG", "api")
def test_vgg_builds(student):
    """SimplifiedVGG() and SimplifiedVGG(7) build nn.Modules"""
    for args in [(), (7,)]:
        info = ca.probe(vgg(student, *args), "describe")
        check(info["kind"] == "module", f"{vgg_name(args)} is not an nn.Module", expected="an nn.Module subclass",
              found=info["type"], hint="Derive the class from nn.Module and call super().__init__() first.")


@grade("SimplifiedVGG", "shape")
def test_vgg_shapes(student):
    """SimplifiedVGG maps a batch of 32x32 images to (batch, num_classes) logits"""
    for args, shape, want in [((), [2, 3, 32, 32], [2, 10]), ((7,), [1, 3, 32, 32], [1, 7])]:
        got = ca.explain_error(lambda: ca.probe(vgg(student, *args), "forward_shape", input_shape=shape)["shape"],
                               f"{vgg_name(args)} failed on a {ca.shape_text(shape)} batch",
                               "The features of a 32x32 image end as 512 x 2 x 2 = 2048 values: flatten each sample "
                               "(x.flatten(1) or x.view(x.size(0), -1)) and use Linear(2048, 512).")
        if got == want:
            continue
        hint, cause = "The last layer's output size is num_classes.", None
        if len(got) == 2 and got[0] == 4 * want[0]:
            hint, cause = FOLDED_HINT, "SimplifiedVGG.batch_folded"
        raise Mistake(f"{vgg_name(args)} on a {ca.shape_text(shape)} batch: wrong output shape",
                      expected=ca.shape_text(want), found=ca.shape_text(got), hint=hint, cause=cause)


FOLDED_HINT = ("The flattening folds the 2x2 positions into the batch (four rows per image): flatten each sample to "
               "its 2048 values, keeping the batch dimension.")


def _batch_folded(student) -> bool:
    """Whether the forward returns four rows per image: a view(-1, 512) that folds the 2x2 positions into the batch.

    Then a first Linear of 512 inputs and dropout on 512 values per row are that one mistake's consequences.
    """
    try:
        got = ca.probe(vgg(student), "forward_shape", input_shape=[2, 3, 32, 32])["shape"]
    except Exception:  # noqa: BLE001 - a forward that fails is judged by the tests that run it
        return False
    return len(got) == 2 and got[0] == 8


def _check_vgg_params(student, got, want, name, num_classes):
    try:
        ca.check_params(got, want, name, _vgg_catalogue(num_classes), fallback=VGG_HINT)
    except Mistake as e:
        if e.cause == "SimplifiedVGG.flatten_size" and _batch_folded(student):
            e.cause, e.hint = "SimplifiedVGG.batch_folded", FOLDED_HINT
        raise


def _vgg_catalogue(num_classes):
    return [
        (ca.simplified_vgg(num_classes, first_linear_in=512),
         "The first Linear takes 512 inputs, but the flattened features are 512 x 2 x 2 = 2048 per image.",
         "SimplifiedVGG.flatten_size"),
        (ca.simplified_vgg(num_classes, update=False),
         "Inside the blocks every convolution maps in_channels to out_channels; after the first one the input has "
         "out_channels channels.", "VGGBlock.in_channels_not_updated"),
        (ca.simplified_vgg(num_classes, layout=((3, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 2))),
         "The last two blocks have three convolutions each (num_convs = 2, 2, 3, 3).", "SimplifiedVGG.block_layout"),
        (ca.linear(2048, 512) + ca.linear(512, 512) + ca.linear(512, num_classes),
         "None of the convolutions are registered: layers kept in a plain Python list are invisible to PyTorch; "
         "use nn.Sequential or nn.ModuleList.", "VGGBlock.unregistered_layers"),
        (ca.simplified_vgg(10), "The classifier ignores num_classes: its output size is always 10.",
         "SimplifiedVGG.num_classes_ignored"),
    ]


@grade("SimplifiedVGG", "params")
def test_vgg_params(student, reference, artifacts):
    """SimplifiedVGG() has 8,952,138 parameters"""
    got = ca.probe(vgg(student), "param_count")
    want = ca.probe(vgg(reference), "param_count")
    row = {"model": "SimplifiedVGG", "params": got["total"], "ref_params": want["total"]}
    try:
        row["flops"] = ca.forward_flops(vgg(student), [1, 3, 32, 32])
        row["ref_flops"] = ca.forward_flops(vgg(reference), [1, 3, 32, 32])
        row["inference_ms"] = ca.probe(vgg(student), "inference_time", input_shape=[1, 3, 32, 32], repeats=3)["ms"]
    except Exception:  # noqa: BLE001 - the comparison is a diagnostic; the tests judge
        pass
    artifacts.setdefault("comparison", []).append(row)
    _check_vgg_params(student, got, want, "SimplifiedVGG()", 10)


@grade("SimplifiedVGG", "params")
def test_vgg_params_classes(student, reference):
    """SimplifiedVGG(7) has the parameter count of a 7-class classifier"""
    got = ca.probe(vgg(student, 7), "param_count")
    want = ca.probe(vgg(reference, 7), "param_count")
    _check_vgg_params(student, got, want, "SimplifiedVGG(7)", 7)


@grade("SimplifiedVGG", "structure")
@pytest.mark.compares_outputs
def test_vgg_matches_eval(student, reference, artifacts):
    """In eval mode, SimplifiedVGG computes the specified network"""
    want = ca.probe(vgg(reference), "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"]
    got = ca.explain_error(lambda: ca.probe(vgg(student), "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"],
                           "SimplifiedVGG failed in eval mode", VGG_HINT)
    where = ca.layer_table(vgg(student), vgg(reference), "SimplifiedVGG", [1, 3, 32, 32], artifacts)
    ca.check_same_output(got, want, "SimplifiedVGG in eval mode", hint=ca.join_hints(VGG_HINT, where))


@grade("SimplifiedVGG", "structure")
def test_vgg_logits_and_batch(student):
    """SimplifiedVGG returns logits (no softmax) and keeps the samples of a batch independent"""
    probs = ca.explain_error(lambda: ca.looks_like_probabilities(vgg(student), NET_INPUT),
                             "SimplifiedVGG failed in eval mode", VGG_HINT)
    check(not probs, "SimplifiedVGG returns probabilities (rows sum to 1)", expected="raw logits",
          found="softmax output", hint="Return the last Linear layer's output: nn.CrossEntropyLoss applies "
                                       "log-softmax itself.", cause="SimplifiedVGG.softmax_output")
    leak = ca.explain_error(lambda: ca.probe(vgg(student), "batch_independence", input_shape=[3, 3, 32, 32]),
                            "SimplifiedVGG failed in eval mode", VGG_HINT)["leak"]
    check(leak == 0.0, "SimplifiedVGG: in eval mode one sample's output depends on the other samples",
          expected="no dependence", found=f"gradient {leak:.3g} reaches the other samples",
          hint="Flatten each sample on its own, keeping the batch dimension; a view with -1 first mixes samples.",
          cause="SimplifiedVGG.batch_folded")


@grade("SimplifiedVGG", "structure")
def test_vgg_dropout(student):
    """SimplifiedVGG applies Dropout(0.5) after each of the two hidden Linear+ReLU layers, in train mode only"""
    r = ca.explain_error(lambda: ca.probe(vgg(student), "dropout_profile", input_shape=NET_INPUT),
                         "SimplifiedVGG failed in train mode", VGG_HINT)
    check(not r["eval"] and r["eval_equal"], "SimplifiedVGG still drops values in eval mode",
          expected="a deterministic forward after model.eval()", found=f"{len(r['eval'])} random operation(s) in eval",
          hint="A functional dropout must be told whether the model is training (self.training): it defaults to "
               "dropping; a dropout module follows model.eval() by itself.", cause="SimplifiedVGG.dropout_in_eval")
    found = [(c["p"], c["per_sample"]) for c in r["train"]]
    text = ", ".join(f"p={p:g} on {n} values" if p is not None else f"random op on {n} values" for p, n in found) or "none"
    check(r["train_differs"] and len(found) == 2, "SimplifiedVGG does not have two dropout layers active in train mode",
          expected="2 dropouts, p=0.5 on 512 values each", found=text,
          hint="Each of the two hidden Linear + ReLU layers of the classifier is followed by a dropout.",
          cause="SimplifiedVGG.dropout_missing" if len(found) < 2 else "SimplifiedVGG.dropout_position")
    for p, n in found:
        check(p is not None and abs(p - 0.5) < 1e-9, "SimplifiedVGG's dropout probability is not 0.5",
              expected="p=0.5", found=text, hint="p is the probability of dropping a value; compare it with the "
                                                 "docstring.", cause="SimplifiedVGG.dropout_p")
        if n != 512 and _batch_folded(student):  # 512 values per row, four rows per image: the flattening's mistake
            raise Mistake("SimplifiedVGG's dropout sees four rows per image", expected="dropout on 512 values per image",
                          found=text, hint=FOLDED_HINT, cause="SimplifiedVGG.batch_folded")
        check(n == 512, "SimplifiedVGG's dropout is in the wrong place", expected="on the 512 hidden features",
              found=text, hint="Dropout follows the ReLU of each hidden Linear layer, not the convolutions or the logits.",
              cause="SimplifiedVGG.dropout_position")


@grade("SimplifiedVGG", "training")
@pytest.mark.compares_outputs
def test_vgg_overfits(student, reference, artifacts):
    """SimplifiedVGG (Kaiming init, dropout off) overfits one batch of 4 images within 20 Adam steps"""
    want = ca.probe(vgg(reference), "overfit", **OVERFIT)["losses"]
    r = ca.explain_error(lambda: ca.probe(vgg(student), "overfit", **OVERFIT), "SimplifiedVGG failed during training",
                         VGG_HINT)
    artifacts.setdefault("loss_curves", {})["SimplifiedVGG"] = {"student": [float(v) for v in r["losses"]],
                                                                "reference": [float(v) for v in want]}
    ca.loss_curve_check(r["losses"], "SimplifiedVGG", below=OVERFIT_BELOW, steps=OVERFIT["steps"], start=None,
                        hint_plateau="Check that forward returns logits (no softmax) and that every layer is used.")


@grade("SimplifiedVGG", "device")
def test_vgg_meta_device(student):
    """SimplifiedVGG runs with every tensor on another device (the meta device): nothing is pinned to the CPU"""
    r = ca.explain_error(lambda: ca.probe(vgg(student), "meta_forward", input_shape=NET_INPUT),
                         "SimplifiedVGG fails once the model and input are moved off the CPU", ca.DEVICE_HINT)
    check(r["device"] == "meta", "SimplifiedVGG: the output is not on the input's device", expected="meta",
          found=r["device"], hint=ca.DEVICE_HINT)


@grade("SimplifiedVGG", "device")
def test_vgg_cuda(student, reference, cuda_gpu):
    """SimplifiedVGG runs on a CUDA GPU and gives the CPU's result there"""
    want = ca.probe(vgg(reference), "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"]
    got = ca.explain_error(lambda: ca.probe(vgg(student), "cuda_forward", input_shape=NET_INPUT),
                           "SimplifiedVGG fails on the GPU", ca.DEVICE_HINT)
    if not got["available"]:
        cuda_not_available(student)
    check(ca.close(got["output"], want, rtol=1e-5, atol=1e-7), "SimplifiedVGG gives another result on the GPU",
          expected="the CPU result", found="different values" if got["output"].shape == want.shape
          else ca.shape_text(got["output"].shape), hint=ca.DEVICE_HINT)
