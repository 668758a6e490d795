"""ModernCNN: the lesson's best-practice template."""

from __future__ import annotations

import itertools

import pytest

import checks_a as ca
from grader.testing import Mistake, check, cuda_not_available, grade

NET_INPUT = [2, 3, 32, 32]
OVERFIT = dict(input_shape=[4, 3, 32, 32], steps=10, lr=1e-3, target_loss=0.3)
OVERFIT_BELOW = 0.3
MODERN_HINT = ("Stem Conv2d(3, 64, 3, padding=1) (bias kept) -> BatchNorm2d(64) -> ReLU; ResidualBlocks (64, 64, 1), "
               "(64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2), (512, 512, 1); "
               "AdaptiveAvgPool2d(1) -> flatten -> Dropout(0.5) -> Linear(512, num_classes). If the ResidualBlock "
               "tests fail too, fix the block first.")
STEM_BIAS = ("The stem convolution has no bias. Leaving it out before a BatchNorm is good practice elsewhere, but "
             "this assignment's ModernCNN keeps the lesson's Conv2d(3, 64, 3, padding=1) with its bias "
             "(64 parameters; 11,100,042 in total).")


def modern(impl, *args):
    return impl.build("ModernCNN", *args)


DOWNSAMPLE_LATE = ("A stage halves the image in its second block; the downsampling belongs to the first block of "
                   "each new stage, the one that changes the channels.")


def _catalogue(num_classes):
    return [
        (ca.modern_cnn(num_classes, stem_bias=False), STEM_BIAS, "ModernCNN.no_stem_bias"),
        (ca.modern_cnn(num_classes, bias=True), "The ResidualBlock convolutions have bias=True; use bias=False before "
                                                "BatchNorm (see the ResidualBlock tests).", "ResidualBlock.conv_bias"),
        (ca.modern_cnn(num_classes, projection="always"),
         "Every ResidualBlock has a projection, even where the shapes match (see the ResidualBlock tests).",
         "ResidualBlock.projection_always"),
        (ca.modern_cnn(10), "The classifier ignores num_classes: its output size is always 10.",
         "ModernCNN.num_classes_ignored"),
    ] + [(ca.modern_cnn(num_classes, late=late), DOWNSAMPLE_LATE, "ModernCNN.downsample_late")
         for n in (1, 2, 3) for late in itertools.combinations((128, 256, 512), n)]


@grade("ModernCNN", "api")
def test_modern_builds(student):
    """ModernCNN() and ModernCNN(7) build nn.Modules"""
    for args in [(), (7,)]:
        info = ca.probe(modern(student, *args), "describe")
        check(info["kind"] == "module", "ModernCNN is not an nn.Module", expected="an nn.Module subclass",
              found=info["type"], hint="Derive the class from nn.Module and call super().__init__() first.")


@grade("ModernCNN", "shape")
def test_modern_shapes(student):
    """ModernCNN maps a batch of 32x32 images to (batch, num_classes) logits"""
    for args, shape, want in [((), [2, 3, 32, 32], [2, 10]), ((7,), [1, 3, 32, 32], [1, 7])]:
        got = ca.explain_error(lambda: ca.probe(modern(student, *args), "forward_shape", input_shape=shape)["shape"],
                               f"ModernCNN({', '.join(map(str, args))}) failed on a {ca.shape_text(shape)} batch",
                               MODERN_HINT)
        if got != want:
            raise Mistake(f"ModernCNN({', '.join(map(str, args))}) on a {ca.shape_text(shape)} batch: wrong output shape",
                          expected=ca.shape_text(want), found=ca.shape_text(got),
                          hint="Pool globally, flatten to (N, 512) and end with Linear(512, num_classes).")


@grade("ModernCNN", "params")
def test_modern_params(student, reference, artifacts):
    """ModernCNN() has 11,100,042 parameters (the stem keeps its bias) and ModernCNN(7) a 7-class head"""
    for args in [(), (7,)]:
        got = ca.probe(modern(student, *args), "param_count")
        want = ca.probe(modern(reference, *args), "param_count")
        if not args:
            row = {"model": "ModernCNN", "params": got["total"], "ref_params": want["total"]}
            try:
                row["flops"] = ca.forward_flops(modern(student), [1, 3, 32, 32])
                row["ref_flops"] = ca.forward_flops(modern(reference), [1, 3, 32, 32])
                row["inference_ms"] = ca.probe(modern(student), "inference_time", input_shape=[1, 3, 32, 32],
                                               repeats=3)["ms"]
            except Exception:  # noqa: BLE001 - the comparison is a diagnostic; the tests judge
                pass
            artifacts.setdefault("comparison", []).append(row)
        ca.check_params(got, want, f"ModernCNN({', '.join(map(str, args))})", _catalogue(args[0] if args else 10),
                        fallback=MODERN_HINT)


@grade("ModernCNN", "structure")
@pytest.mark.compares_outputs
def test_modern_matches_eval(student, reference, artifacts):
    """In eval mode, ModernCNN computes the specified network"""
    want = ca.probe(modern(reference), "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"]
    got = ca.explain_error(lambda: ca.probe(modern(student), "keyed_forward", input_shape=NET_INPUT,
                                            mode="eval")["output"], "ModernCNN failed in eval mode", MODERN_HINT)
    where = ca.layer_table(modern(student), modern(reference), "ModernCNN", [1, 3, 32, 32], artifacts)
    if ca.close(got, want):
        return
    counts = ca.probe(modern(student), "param_count")
    if ca._clean(counts["by_type"]) == ca._clean(dict(ca.modern_cnn(stem_bias=False))):
        # Only the stem bias differs (the params test names it). BatchNorm's batch statistics cancel a
        # bias, so compare in train mode with dropout off instead.
        want = ca.probe(modern(reference), "keyed_forward", input_shape=NET_INPUT, mode="train", dropout_off=True)["output"]
        got = ca.probe(modern(student), "keyed_forward", input_shape=NET_INPUT, mode="train", dropout_off=True)["output"]
        ca.check_same_output(got, want, "ModernCNN in train mode (dropout off)", hint=ca.join_hints(MODERN_HINT, where))
        return
    ca.check_same_output(got, want, "ModernCNN in eval mode", hint=ca.join_hints(MODERN_HINT, where))


@grade("ModernCNN", "structure")
def test_modern_dropout(student):
    """ModernCNN applies one Dropout(0.5) to the 512 pooled features, in train mode only"""
    r = ca.explain_error(lambda: ca.probe(modern(student), "dropout_profile", input_shape=NET_INPUT),
                         "ModernCNN failed in train mode", MODERN_HINT)
    check(not r["eval"] and r["eval_equal"], "ModernCNN still drops values in eval mode",
          expected="a deterministic forward after model.eval()", found=f"{len(r['eval'])} random operation(s) in eval",
          hint="A functional dropout must be told whether the model is training (self.training): it defaults to "
               "dropping; a dropout module follows model.eval() by itself.", cause="ModernCNN.dropout_in_eval")
    found = [(c["p"], c["per_sample"]) for c in r["train"]]
    text = ", ".join(f"p={p:g} on {n} values" if p is not None else f"random op on {n} values" for p, n in found) or "none"
    check(r["train_differs"] and len(found) == 1, "ModernCNN does not have exactly one dropout active in train mode",
          expected="1 dropout, p=0.5 on 512 values", found=text,
          hint="Dropout belongs only in the classifier, on the pooled features.",
          cause="ModernCNN.dropout_missing" if not found else "ModernCNN.dropout_position")
    p, n = found[0]
    check(p is not None and abs(p - 0.5) < 1e-9, "ModernCNN's dropout probability is not 0.5", expected="p=0.5",
          found=text, hint="p is the probability of dropping a value; compare it with the docstring.",
          cause="ModernCNN.dropout_p")
    check(n == 512, "ModernCNN's dropout is in the wrong place", expected="on the 512 pooled features", found=text,
          hint="Dropout acts on the pooled features, after global pooling and before the Linear layer.",
          cause="ModernCNN.dropout_position")


@grade("ModernCNN", "structure")
def test_modern_logits(student):
    """ModernCNN returns logits, not probabilities"""
    probs = ca.looks_like_probabilities(modern(student), NET_INPUT)
    check(not probs, "ModernCNN returns probabilities (rows sum to 1)", expected="raw logits", found="softmax output",
          hint="Return the last Linear layer's output: nn.CrossEntropyLoss applies log-softmax itself.",
          cause="ModernCNN.softmax_output")


@grade("ModernCNN", "training")
@pytest.mark.compares_outputs
def test_modern_overfits(student, reference, artifacts):
    """ModernCNN starts near ln(10) and overfits one batch of 4 images within 10 Adam steps (train-mode loss)"""
    want = ca.probe(modern(reference), "overfit", **OVERFIT)["losses"]
    r = ca.explain_error(lambda: ca.probe(modern(student), "overfit", **OVERFIT), "ModernCNN failed during training",
                         MODERN_HINT)
    artifacts.setdefault("loss_curves", {})["ModernCNN"] = {"student": [float(v) for v in r["losses"]],
                                                            "reference": [float(v) for v in want]}
    ca.loss_curve_check(r["losses"], "ModernCNN", below=OVERFIT_BELOW, steps=OVERFIT["steps"], start=(1.0, 6.0),
                        hint_plateau="Check that forward returns logits (no softmax) and that every layer is used.")


@grade("ModernCNN", "device")
def test_modern_meta_device(student):
    """ModernCNN runs with every tensor on another device (the meta device): nothing is pinned to the CPU"""
    r = ca.explain_error(lambda: ca.probe(modern(student), "meta_forward", input_shape=NET_INPUT),
                         "ModernCNN fails once the model and input are moved off the CPU", ca.DEVICE_HINT)
    check(r["device"] == "meta", "ModernCNN: the output is not on the input's device", expected="meta",
          found=r["device"], hint=ca.DEVICE_HINT)


@grade("ModernCNN", "device")
def test_modern_cuda(student, reference, cuda_gpu):
    """ModernCNN runs on a CUDA GPU and gives the CPU's result there"""
    want = ca.probe(modern(reference), "keyed_forward", input_shape=NET_INPUT, mode="eval")["output"]
    got = ca.explain_error(lambda: ca.probe(modern(student), "cuda_forward", input_shape=NET_INPUT),
                           "ModernCNN fails on the GPU", ca.DEVICE_HINT)
    if not got["available"]:
        cuda_not_available(student)
    check(ca.close(got["output"], want, rtol=1e-5, atol=1e-7), "ModernCNN gives another result on the GPU",
          expected="the CPU result", found="different values" if got["output"].shape == want.shape
          else ca.shape_text(got["output"].shape), hint=ca.DEVICE_HINT)
