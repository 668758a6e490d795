"""The visualisation practice task: first-layer filters and feature maps."""

from __future__ import annotations

import numpy as np

import checks_b as cb
from grader.testing import Mistake, check, check_equal, grade

GRID_CASES = {
    "rgb": "5 RGB filters (3 columns, padding 1)",
    "rgb_padding2": "5 RGB filters with padding=2",
    "grey": "4 filters over 2 input channels (grey, averaged over the channels)",
    "constant": "6 filters, one of them constant",
}


@grade("first_conv", "api")
def test_first_conv(student):
    """first_conv returns the first nn.Conv2d in registration order and raises ValueError without one"""
    r = cb.run(student.function("first_conv"), "first_conv_probe")
    check(r["type"] == "Conv2d", "first_conv must return the nn.Conv2d module itself", expected="an nn.Conv2d",
          found=r["type"], hint="Walk model.modules() and return the first module that is an nn.Conv2d.")
    check(r["index"] == 0, "first_conv returned another convolution than the first one in model.modules()",
          expected="the first nn.Conv2d (nested inside a Sequential, after a Linear)",
          found=f"convolution number {r['index'] + 1 if r['index'] is not None else '?'} of {r['convs']}",
          hint="model.modules() yields modules in registration order, depth first; return the first Conv2d it yields.")
    check(r["no_conv"] == "ValueError", "For a model without any nn.Conv2d, first_conv must raise ValueError",
          expected="ValueError", found=r["no_conv"])


@grade("filter_grid", "structure")
def test_filter_grid(student, reference):
    """filter_grid tiles the first conv's filters, each min-max normalised, like make_grid"""
    got = cb.run(student.function("filter_grid"), "filter_grid_probe")
    want = cb.run(reference.function("filter_grid"), "filter_grid_probe")
    for case, label in GRID_CASES.items():
        g, w = got[case], want[case]
        check(g["type"] == "tensor", f"filter_grid must return a tensor ({label})", expected="a (3, H, W) tensor", found=g["type"])
        check_equal(g["shape"], w["shape"], f"grid shape for {label}",
                    hint="cols = ceil(sqrt(n)), rows = ceil(n / cols); make_grid(filters, nrow=cols, padding=padding) adds "
                         "padding pixels between and around the filters.")
        check(not g["requires_grad"] and g["device"] == "cpu", f"The grid must be detached and on the CPU ({label})",
              expected="requires_grad=False on cpu", found=f"requires_grad={g['requires_grad']} on {g['device']}",
              hint="Start from first_conv(model).weight.detach().cpu().")
        diff = float(np.abs(g["grid"] - w["grid"]).max())
        if diff > 1e-4:
            hint = "Normalise every filter on its own: (w - w.min()) / (w.max() - w.min()), over all its channels and pixels."
            if case == "grey":
                hint = "For filters that do not have 3 input channels, average over the input channels and repeat the grey image 3 times."
            elif case == "constant":
                hint = "A constant filter has max == min: clamp the range (e.g. .clamp_min(1e-12)) so it becomes 0, not NaN."
            if not np.isfinite(g["grid"]).all():
                hint = "The grid contains NaN: a constant filter divides by max - min = 0; clamp the range first."
            raise Mistake(f"The grid's pixels differ from the specified normalisation and tiling ({label})",
                          expected=f"values in [0, 1] (mean {w['grid'].mean():.4f})",
                          found=f"mean {np.nanmean(g['grid']):.4f}, largest difference {diff:.3g}", hint=hint)


@grade("feature_maps", "structure")
def test_feature_maps_values(student, reference):
    """feature_maps returns the watched layer's output for the first image, computed in eval mode"""
    got = cb.run(student.function("feature_maps"), "feature_maps_probe")
    want = cb.run(reference.function("feature_maps"), "feature_maps_probe")
    check(got["type"] == "tensor", "feature_maps must return a tensor", expected="a (C, H, W) tensor", found=got["type"])
    check_equal(got["shape"], want["shape"], "shape of the feature maps of a Conv2d(4, 6, 3, stride=2) on a 9 x 9 image",
                hint="Return the hooked output of the first image only: output[0], shape (C, H, W).")
    check(not got["requires_grad"], "The feature maps still carry an autograd graph", expected="detached",
          found="requires_grad=True", hint="Run the model under torch.no_grad() and detach the captured output.")
    diff = float(np.abs(got["maps"] - want["maps"]).max())
    if diff > 1e-5:
        raise Mistake("The feature maps differ from the layer's output in eval mode", expected=f"mean {want['maps'].mean():.4f}",
                      found=f"mean {got['maps'].mean():.4f}, largest difference {diff:.3g}",
                      hint="Register a forward hook on `layer`, run model(x) (the whole model) in eval mode, and keep the hooked "
                           "output (BatchNorm before the layer must use its running statistics).")
    check_equal(got["second_shape"], want["second_shape"], "shape of the feature maps of a BatchNorm2d(4) layer")


@grade("feature_maps", "structure")
def test_feature_maps_leave_model(student):
    """feature_maps leaves the model as it found it: mode restored, statistics unchanged, hook removed"""
    got = cb.run(student.function("feature_maps"), "feature_maps_probe")
    check(not got["stats_changed"], "feature_maps changed BatchNorm's running statistics",
          expected="unchanged statistics", found="updated statistics",
          hint="Run the forward in eval mode (model.eval()) so BatchNorm does not update its running statistics.")
    check(got["mode_after_train"] == "train" and got["mode_after_eval"] == "eval",
          "feature_maps does not restore the model's train/eval mode",
          expected="train -> train, eval -> eval", found=f"train -> {got['mode_after_train']}, eval -> {got['mode_after_eval']}",
          hint="Remember whether the model was training before switching it to eval mode, and put it back in that "
               "mode in a finally block.")
    check(got["hooks_left"] == 0, "feature_maps left a forward hook registered on the layer",
          expected="no hooks left", found=f"{got['hooks_left']} hook(s) left",
          hint="Keep the handle from register_forward_hook and call handle.remove() in a finally block.")
    check(got["hooks_left_after_failure"] == 0, "When the model's forward raises, feature_maps leaves its hook behind",
          expected="no hooks left", found=f"{got['hooks_left_after_failure']} hook(s) left",
          hint="Remove the hook in a `finally:` block so it goes away even when model(x) fails.")


def _check_png(got: dict, want: dict, what: str) -> None:
    check(got["exists"], f"{what} wrote no file at the given path", expected="a PNG file at path",
          found=f"files in the folder: {', '.join(got.get('files', [])) or 'none'}")
    check(got["png"], f"{what} wrote a file that is not a PNG image", expected="PNG", found=f"{got['bytes']} bytes of another format",
          hint="torchvision.utils.save_image(grid, path) writes a PNG when the path ends in .png.")
    check_equal([got["height"], got["width"]], [want["height"], want["width"]], f"image height and width written by {what}",
                hint="Save the grid itself (one pixel per grid value), not a matplotlib figure with axes and margins.")
    if "pixels" in got and "pixels" in want:
        diff = int(np.abs(got["pixels"].astype(int) - want["pixels"].astype(int)).max())
        check(diff <= 2, f"The pixels written by {what} differ from the specified grid", expected="the specified grid, 8-bit",
              found=f"largest difference {diff} of 255",
              hint="Values in [0, 1] map to 0..255; save the grid without a colour map (grey stays grey).")


@grade("save_filter_grid", "api")
def test_save_filter_grid(student, reference):
    """save_filter_grid writes filter_grid(model) as a PNG and returns the path"""
    got = cb.run(student.function("save_filter_grid"), "save_image_probe", which="filter_grid")
    want = cb.run(reference.function("save_filter_grid"), "save_image_probe", which="filter_grid")
    _check_png(got, want, "save_filter_grid")
    check(got["returned_path"], "save_filter_grid must return the path it wrote", expected="path", found=got["returned_type"])


@grade("save_feature_maps", "api")
def test_save_feature_maps(student, reference):
    """save_feature_maps writes the first max_maps feature maps as one grey PNG grid and returns the path"""
    for max_maps in (None, 4):
        params = {"which": "feature_maps"} if max_maps is None else {"which": "feature_maps", "max_maps": max_maps}
        got = cb.run(student.function("save_feature_maps"), "save_image_probe", **params)
        want = cb.run(reference.function("save_feature_maps"), "save_image_probe", **params)
        what = "save_feature_maps" + (f" with max_maps={max_maps}" if max_maps else "")
        _check_png(got, want, what)
        check(got["returned_path"], "save_feature_maps must return the path it wrote", expected="path", found=got["returned_type"])
