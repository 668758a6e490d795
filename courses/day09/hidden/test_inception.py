"""InceptionModule and SimplifiedInception."""

from __future__ import annotations

import numpy as np
import pytest

import catalogue
import checks_b as cb
from grader.testing import Mistake, check, check_equal, grade

LESSON = (64, 32, 48, 64, 8, 16, 16)      # the lesson's first module: 128 channels, 37,688 parameters
ODD = (16, 4, 6, 8, 2, 4, 3)              # every branch a different width: 19 channels
TINY = (16, 2, 4, 2, 4, 2, 2)             # two channels per branch, for the receptive fields
GOOGLENET_3A = (192, 64, 96, 128, 16, 32, 32)
BRANCHES = ("the 1x1 branch", "the 3x3 branch", "the 5x5 branch", "the pool branch")
OVERFIT = dict(input_shape=[2, 3, 32, 32], steps=40, lr=1e-3, kaiming=True, dropout_off=True, target_loss=0.2)
OVERFIT_BELOW = cb.OVERFIT_BELOW
EXPECTED_WIDTHS = (1, 3, 5, 3)


def _out_channels(cfg: tuple) -> int:
    return cfg[1] + cfg[3] + cfg[5] + cfg[6]


# --------------------------------------------------------------------------- InceptionModule

@grade("InceptionModule", "api")
def test_inception_module_builds(student):
    """InceptionModule takes its seven sizes positionally and is an nn.Module"""
    for cfg in (LESSON, ODD):
        d = cb.run(student.build("InceptionModule", *cfg), "describe")
        check(d["kind"] == "module", f"{cb.call_text('InceptionModule', cfg)} did not build an nn.Module",
              expected="an nn.Module", found=d["type"],
              hint="InceptionModule must subclass nn.Module and call super().__init__() first.")


@grade("InceptionModule", "shape")
@pytest.mark.compares_outputs
def test_inception_module_shape(student, reference):
    """InceptionModule keeps H x W (also odd sizes) and outputs ch1x1 + ch3x3 + ch5x5 + pool_proj channels"""
    for cfg, shape in ((LESSON, [2, 64, 9, 9]), (ODD, [2, 16, 7, 5])):
        mine = cb.run(student.build("InceptionModule", *cfg), "anatomy", input_shape=shape)
        theirs = cb.run(reference.build("InceptionModule", *cfg), "anatomy", input_shape=shape)
        where = f"{cb.call_text('InceptionModule', cfg)} on an input of shape {cb.shape_text(shape)}"
        if not mine["ok"]:
            raise Mistake(f"{where} raised an error", expected=f"output {cb.shape_text(theirs['shape'])}",
                          found=mine["error"], hint=" ".join(cb.diagnose(mine, theirs)) or None,
                          cause=cb.diagnosed_cause(mine, "InceptionModule"))
        if mine["shape"] != theirs["shape"]:
            hints = cb.diagnose(mine, theirs)
            if mine["shape"][1:2] != theirs["shape"][1:2]:
                hints.insert(0, f"The output must have ch1x1 + ch3x3 + ch5x5 + pool_proj = {_out_channels(cfg)} channels.")
            raise Mistake(f"{where}: wrong output shape", expected=cb.shape_text(theirs["shape"]),
                          found=cb.shape_text(mine["shape"]), hint=" ".join(hints) or None,
                          cause=cb.diagnosed_cause(mine, "InceptionModule"))


@grade("InceptionModule", "params")
def test_inception_module_params(student, reference):
    """InceptionModule has the lesson's parameter count (37,688 for (64, 32, 48, 64, 8, 16, 16))"""
    for cfg in (LESSON, GOOGLENET_3A, ODD):
        cb.check_params(student, reference, "InceptionModule", cfg, cb.inception_mistakes(*cfg))


def _branch_order(student, reference, cfg, shape) -> None:
    """A student output that is the reference's branches joined in another order: name the order."""
    try:
        got = cb.run(student.build("InceptionModule", *cfg), "keyed_forward", input_shape=shape, mode="eval")["output"]
    except Exception:  # noqa: BLE001 - the other checks explain a crash
        return
    want = cb.run(reference.build("InceptionModule", *cfg), "keyed_forward", input_shape=shape, mode="eval")["output"]
    order = catalogue.concat_order(got, want, (cfg[1], cfg[3], cfg[5], cfg[6]), BRANCHES)
    if order:
        raise Mistake("The four branches are right but joined in another order",
                      expected=", ".join(BRANCHES), found=order,
                      hint="The output channels come from the 1x1, 3x3, 5x5 and pool branches, in that order.",
                      cause="InceptionModule.concat_order")


@grade("InceptionModule", "structure")
@pytest.mark.compares_outputs
def test_inception_module_equivalence(student, reference, artifacts):
    """InceptionModule computes the specified function (same weights, same output)"""
    for cfg, shape in ((LESSON, [2, 64, 9, 9]), (ODD, [2, 16, 7, 5])):
        _branch_order(student, reference, cfg, shape)
        cb.same_function(student, reference, "InceptionModule", cfg, shape)


@grade("InceptionModule", "structure")
@pytest.mark.compares_outputs
def test_inception_module_branches(student, reference):
    """InceptionModule concatenates the 1x1, 3x3, 5x5 and pool branches in that order"""
    shape = [1, 16, 9, 9]
    got = cb.run_or_explain(student, reference, "InceptionModule", TINY, "receptive_fields", shape)
    want = cb.run(reference.build("InceptionModule", *TINY), "receptive_fields", input_shape=shape)
    check_equal(got["out_shape"], want["out_shape"], f"output shape of {cb.call_text('InceptionModule', TINY)}",
                hint="The output must have ch1x1 + ch3x3 + ch5x5 + pool_proj channels and keep H x W.")
    if got["widths"] == want["widths"]:
        return
    sizes = (TINY[1], TINY[3], TINY[5], TINY[6])
    starts = np.cumsum((0,) + sizes)
    found = []
    for i, name in enumerate(BRANCHES):
        widths = sorted(set(got["widths"][starts[i]:starts[i + 1]]))
        found.append(f"{name} (channels {starts[i]}-{starts[i + 1] - 1}) sees {'/'.join(map(str, widths))} pixels")
    expected = ", ".join(f"{name}: {w}" for name, w in zip(BRANCHES, EXPECTED_WIDTHS))
    got_first = [got["widths"][s] for s in starts[:-1]]
    cause = None
    if sorted(got_first) == sorted(EXPECTED_WIDTHS):
        hint = "The branches are there but joined in another order: the output channels follow the branch order."
        cause = "InceptionModule.concat_order"
    elif 5 not in got["widths"]:
        hint = "No channel sees a 5x5 window: the 5x5 branch needs a 5x5 kernel."
    else:
        hint = "A branch sees a window of another width than its kernels give (see the widths above)."
    raise Mistake("The width of the input window that each output channel sees (its receptive field) does not "
                  "match the branch order 1x1, 3x3, 5x5, pool",
                  expected=expected, found="; ".join(found), hint=hint, cause=cause)


@grade("InceptionModule", "structure")
def test_inception_module_gradients(student, reference):
    """InceptionModule trains every parameter and leaves its input unchanged"""
    shape = [2, 16, 7, 5]
    flow = cb.run_or_explain(student, reference, "InceptionModule", ODD, "gradient_flow", shape)
    check(not flow["without_grad"], "Some parameters get no gradient, so they never learn",
          expected="a gradient for every parameter", found=", ".join(flow["without_grad"][:5]),
          hint="Every layer you create in __init__ must be used in forward, each exactly where the docstring puts it.",
          cause="InceptionModule.unused_layer")
    mutated = cb.run(student.build("InceptionModule", *ODD), "input_mutation", input_shape=shape)
    check(not mutated["mutated"], "The forward changes its input tensor in place",
          expected="x unchanged after forward", found="x modified",
          hint="All four branches read the same x: an in-place operation on x (e.g. relu_ or ReLU(inplace=True) "
               "applied to x itself) corrupts the input of the other branches.", cause="InceptionModule.inplace_on_input")


@grade("InceptionModule", "device")
def test_inception_module_meta(student, reference):
    """InceptionModule runs on any device (forward on the meta device)"""
    got = cb.run_or_explain(student, reference, "InceptionModule", LESSON, "meta_forward", [2, 64, 9, 9])
    check_equal(got["shape"], [2, 128, 9, 9], "output shape on the meta device",
                hint="Create tensors in forward from the input (torch.zeros_like(x), device=x.device).")


# --------------------------------------------------------------------------- SimplifiedInception

@grade("SimplifiedInception", "api")
def test_simplified_inception_builds(student):
    """SimplifiedInception() and SimplifiedInception(num_classes) build nn.Modules"""
    for args in ((), (7,)):
        d = cb.run(student.build("SimplifiedInception", *args), "describe")
        check(d["kind"] == "module", f"{cb.call_text('SimplifiedInception', args)} did not build an nn.Module",
              expected="an nn.Module", found=d["type"])


@grade("SimplifiedInception", "shape")
def test_simplified_inception_shape(student, reference):
    """SimplifiedInception maps (N, 3, H, W) images to (N, num_classes) logits, also for odd sizes"""
    for args, shape, want in (((), [2, 3, 32, 32], [2, 10]), ((7,), [1, 3, 19, 27], [1, 7])):
        mine = cb.run(student.build("SimplifiedInception", *args), "anatomy", input_shape=shape)
        where = f"{cb.call_text('SimplifiedInception', args)} on an input of shape {cb.shape_text(shape)}"
        if not mine["ok"]:
            theirs = cb.run(reference.build("SimplifiedInception", *args), "anatomy", input_shape=shape)
            raise Mistake(f"{where} raised an error", expected=f"output {cb.shape_text(want)}", found=mine["error"],
                          hint=" ".join(cb.diagnose(mine, theirs)) or
                          "Use global average pooling (AdaptiveAvgPool2d((1, 1))) so any input size works.")
        check_equal(mine["shape"], want, f"output shape of {where}",
                    hint="Flatten after the global average pool (torch.flatten(x, 1)) and end with Linear(480, num_classes).")


@grade("SimplifiedInception", "params")
def test_simplified_inception_params(student, reference, artifacts):
    """SimplifiedInception has 583,410 parameters (and the classifier follows num_classes)"""
    cb.record_comparison(artifacts, student, reference, "SimplifiedInception", "Inception")
    cb.check_params(student, reference, "SimplifiedInception", (), cb.simplified_inception_mistakes(10))
    cb.check_params(student, reference, "SimplifiedInception", (7,), cb.simplified_inception_mistakes(7))


@grade("SimplifiedInception", "structure")
@pytest.mark.compares_outputs
def test_simplified_inception_equivalence(student, reference, artifacts):
    """SimplifiedInception computes the specified network in eval mode (same weights, same logits)"""
    shape = [1, 3, 32, 32]
    mine = cb.run(student.build("SimplifiedInception"), "anatomy", input_shape=shape)
    theirs = cb.run(reference.build("SimplifiedInception"), "anatomy", input_shape=shape)
    cb.record_layer_table(artifacts, "SimplifiedInception", mine, theirs)
    cb.same_function(student, reference, "SimplifiedInception", (), shape)


@grade("SimplifiedInception", "structure")
def test_simplified_inception_dropout(student, reference):
    """SimplifiedInception applies Dropout(0.4) in training mode only"""
    got = cb.run_or_explain(student, reference, "SimplifiedInception", (), "stochasticity", [1, 3, 32, 32])
    check(got["train_differs"], "Two forwards in training mode give identical outputs: there is no active dropout",
          expected="different outputs (dropout drops random features)", found="identical outputs",
          hint="The classifier has a dropout between the pooled features and the final Linear.",
          cause="SimplifiedInception.dropout_missing")
    check(got["eval_equal"], "Two forwards in eval mode give different outputs: dropout stays on in evaluation",
          expected="identical outputs", found="different outputs",
          hint="A functional dropout must be told whether the model is training (self.training); a dropout module "
               "follows model.eval() by itself.", cause="SimplifiedInception.dropout_in_eval")
    profile = cb.run(student.build("SimplifiedInception"), "dropout_profile", input_shape=[1, 3, 32, 32])
    sizes = sorted({c["per_sample"] for c in profile["train"]})
    check(sizes == [480], "SimplifiedInception's dropout acts on other values than the 480 pooled features",
          expected="one dropout on the 480 values per image after global pooling",
          found=", ".join(f"{n} values per image" for n in sizes) or "no dropout",
          hint="Dropout acts on the pooled features right before the final Linear; dropping pixels of the feature "
               "maps before pooling is a much weaker regulariser.", cause="SimplifiedInception.dropout_position")
    rows = cb.run(student.build("SimplifiedInception"), "anatomy", input_shape=[1, 3, 32, 32], mode="train")["layers"]
    ps = sorted({r["p"] for r in rows if "Dropout" in r["type"]})
    check(not ps or ps == [0.4], "The dropout probability is not the lesson's",
          expected="p = 0.4", found=", ".join(f"p = {p:g}" for p in ps),
          hint="p is the probability of dropping a value; compare it with the docstring.",
          cause="SimplifiedInception.dropout_p")


@grade("SimplifiedInception", "structure")
def test_simplified_inception_network_checks(student, reference):
    """SimplifiedInception returns logits, keeps samples independent and trains every parameter"""
    shape = [2, 3, 32, 32]
    probs = cb.run_or_explain(student, reference, "SimplifiedInception", (), "logits_check", shape)
    check(not probs["looks_like_probabilities"], "The output rows are probabilities (non-negative, summing to 1)",
          expected="raw logits", found="softmax output",
          hint="Remove the softmax at the end: nn.CrossEntropyLoss expects logits and applies log-softmax itself.",
          cause="SimplifiedInception.softmax_output")
    leak = cb.run(student.build("SimplifiedInception"), "batch_independence", input_shape=shape)["leak"]
    check(leak == 0.0, "In eval mode the first sample's output depends on the other samples of the batch",
          expected="no dependence", found=f"gradient {leak:.3g} reaching other samples",
          hint="Flatten each sample on its own, keeping the batch dimension; a view with -1 first mixes samples.",
          cause="SimplifiedInception.batch_folded")
    flow = cb.run(student.build("SimplifiedInception"), "gradient_flow", input_shape=shape)
    check(not flow["without_grad"], "Some parameters get no gradient, so they never learn",
          expected="a gradient for every parameter", found=", ".join(flow["without_grad"][:5]),
          hint="Every layer created in __init__ must be used in forward.", cause="SimplifiedInception.unused_layer")


@grade("SimplifiedInception", "training")
@pytest.mark.compares_outputs
def test_simplified_inception_overfits(student, reference, artifacts):
    """SimplifiedInception can overfit one small batch (Adam, lr 1e-3, He init, dropout off)"""
    params = {k: v for k, v in OVERFIT.items() if k != "input_shape"}
    want = cb.run(reference.build("SimplifiedInception"), "overfit", **OVERFIT)
    got = cb.run_or_explain(student, reference, "SimplifiedInception", (), "overfit", OVERFIT["input_shape"], **params)
    cb.check_overfit("SimplifiedInception", got, want, artifacts)


@grade("SimplifiedInception", "training")
def test_simplified_inception_trains_on_gpu(student, reference):
    """SimplifiedInception trains on a GPU at full size (32 x 32, batch 16)"""
    cb.need_cuda()
    params = dict(input_shape=[16, 3, 32, 32], steps=100, lr=1e-3, kaiming=True, target_loss=0.1)
    got = cb.cuda_result(cb.run(student.build("SimplifiedInception"), "device_overfit", **params), student)
    cb.check_gpu_overfit("SimplifiedInception", got)


@grade("SimplifiedInception", "device")
def test_simplified_inception_meta(student, reference):
    """SimplifiedInception runs on any device (forward on the meta device)"""
    got = cb.run_or_explain(student, reference, "SimplifiedInception", (), "meta_forward", [2, 3, 32, 32])
    check_equal(got["shape"], [2, 10], "output shape on the meta device",
                hint="Create tensors in forward from the input (device=x.device), and register tensors as buffers.")


@grade("SimplifiedInception", "device")
def test_simplified_inception_cuda(student, reference):
    """SimplifiedInception moves to the GPU with .to("cuda") and gives the CPU's outputs there"""
    cb.need_cuda()
    got = cb.cuda_result(cb.run(student.build("SimplifiedInception"), "cuda_move", input_shape=[2, 3, 32, 32]), student)
    cb.check_cuda_move("SimplifiedInception", got)
