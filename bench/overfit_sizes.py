"""Can the overfitting checks run on a smaller batch or image and still separate right from wrong?

Run (from the project's root):

    .venv/bin/python bench/overfit_sizes.py [--shape 4x32 --shape 2x32 ...] [--network SimplifiedVGG ...]

For each network with an overfitting test in the Day 9 suite, it runs that test's
``overfit`` probe, with the test's own parameters (``OVERFIT`` and ``OVERFIT_BELOW``
in the hidden test module), on the reference and on every corpus case that
targets the network and whose mistake, if it names one, is the network's own
(``targets`` and ``cause`` in its case.toml), once per ``--shape``
(``BxS``: the batch and the image's side; the test's own shape first). It
prints, per case and shape, the losses taken, the lowest loss, whether the test
would pass, and the probe's time; then, per network, the median time per shape
and every case whose verdict changes with the shape.

A case's file is laid over the reference (the other files are the reference's),
as a submission that only gets that file wrong. Cases whose mistake is in a
block are left out: the suite grades a network built from a failing block with
the block's stand-in, so its overfitting test judges the network's own wiring
only.

The corpus is the project's own test material, so the probes run in this
process (one torch thread), not in the grading sandbox.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ROOT / "courses" / "day09" / "hidden"
REFERENCE = ROOT / "reference" / "day09"
CORPUS = ROOT / "tests" / "corpus"

# network -> (its file, its hidden test module, the constructor arguments its overfitting test uses)
NETWORKS: dict[str, tuple[str, str, tuple[Any, ...]]] = {
    "SimplifiedVGG": ("vgg.py", "test_vgg", ()),
    "ResNet": ("resnet.py", "test_resnet", ([1, 1, 1, 1], 10)),
    "ModernCNN": ("modern.py", "test_modern", ()),
    "SimplifiedInception": ("inception.py", "test_inception", ()),
    "MobileNetV1": ("mobilenet.py", "test_mobilenet", ()),
}
LESSON_MODULES = ("vgg", "resnet", "inception", "mobilenet", "modern", "training", "visualize", "scaling")


def parse_shape(text: str) -> tuple[int, int]:
    try:
        batch, side = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is BATCHxSIDE, such as 4x32; got {text!r}") from None
    if batch < 1 or side < 1:
        raise argparse.ArgumentTypeError(f"batch and side must be positive; got {text!r}")
    return batch, side


def test_settings(module_name: str) -> tuple[dict[str, Any], float]:
    """The overfitting test's probe parameters and the loss it must get below, read from the hidden suite."""
    if str(HIDDEN) not in sys.path:
        sys.path.insert(0, str(HIDDEN))
    module = importlib.import_module(module_name)
    return dict(module.OVERFIT), float(module.OVERFIT_BELOW)


def load_network(case_dir: Path | None, file: str, name: str) -> Callable[..., Any]:
    """The network's class from ``case_dir/file`` laid over the reference (the reference's own if no case)."""
    for module in LESSON_MODULES:
        sys.modules.pop(module, None)
    sys.path[:0] = [str(case_dir)] if case_dir else []
    sys.path.insert(len([case_dir] if case_dir else []), str(REFERENCE))
    try:
        spec = importlib.util.spec_from_file_location(file[:-3], (case_dir or REFERENCE) / file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[file[:-3]] = module
        spec.loader.exec_module(module)
        return getattr(module, name)
    finally:
        del sys.path[: (2 if case_dir else 1)]


def cases_for(network: str, file: str) -> list[tuple[str, Path | None]]:
    found: list[tuple[str, Path | None]] = [("reference", None)]
    for case_toml in sorted(CORPUS.glob("*/*/case.toml")):
        case = tomllib.loads(case_toml.read_text(encoding="utf-8"))
        own_mistake = case.get("cause", network).split(".")[0] == network
        if network in case.get("targets", []) and own_mistake and (case_toml.parent / file).exists():
            found.append((f"{case_toml.parent.parent.name}/{case_toml.parent.name}", case_toml.parent))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=parse_shape, action="append", default=None,
                        help="BATCHxSIDE to try besides the test's own (repeatable; default 2x32)")
    parser.add_argument("--network", action="append", choices=sorted(NETWORKS), default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    import torch

    from grader.worker.probes.core import has_lazy_layers, materialise
    from grader.worker.probes.training import overfit

    torch.set_num_threads(1)
    print(f"machine: {platform.platform()}; {platform.processor() or platform.machine()}; "
          f"{len(os.sched_getaffinity(0))} usable cores; python {platform.python_version()}; torch {torch.__version__}; "
          "one torch thread", flush=True)
    changed: list[str] = []
    for network in args.network or list(NETWORKS):
        file, test_module, ctor_args = NETWORKS[network]
        params, below = test_settings(test_module)
        own = (params["input_shape"][0], params["input_shape"][2])
        shapes = [own] + [s for s in (args.shape or [(2, 32)]) if s != own]
        print(f"\n== {network}: {test_module}.OVERFIT {params}, passes below {below:g}; shapes "
              + ", ".join(f"{b}x{s}" for b, s in shapes), flush=True)
        times: dict[tuple[int, int], list[float]] = {s: [] for s in shapes}
        for label, case_dir in cases_for(network, file):
            try:
                cls = load_network(case_dir, file, network)
            except Exception as e:  # noqa: BLE001 - a case that cannot be imported is reported, not fatal
                print(f"  {label:44s} import failed: {type(e).__name__}: {e}", flush=True)
                continue
            verdicts, cells = [], []
            for batch, side in shapes:
                shape = [batch, 3, side, side]

                def build() -> Any:
                    model = cls(*ctor_args)
                    if has_lazy_layers(model):
                        materialise(model, [1, 3, 32, 32])  # the documented input, as the suite does
                    return model

                started = time.perf_counter()
                try:
                    result = overfit(build, **{**params, "input_shape": shape})
                except Exception as e:  # noqa: BLE001 - an error fails the test; the bench says which
                    verdicts.append("error")
                    cells.append(f"{batch}x{side}: error ({type(e).__name__})")
                    continue
                spent = time.perf_counter() - started
                losses = [float(v) for v in result["losses"]]
                passed = bool(losses) and min(losses) < below and not result["without_grad"]
                verdicts.append("pass" if passed else "fail")
                times[(batch, side)].append(spent)
                cells.append(f"{batch}x{side}: {len(losses):2d} losses, lowest {min(losses):.3f}, "
                             f"{verdicts[-1]}, {spent:.2f} s")
            print(f"  {label:44s} " + " | ".join(cells), flush=True)
            if len(set(verdicts)) > 1:
                changed.append(f"{network} {label}: " + ", ".join(
                    f"{b}x{s} {v}" for (b, s), v in zip(shapes, verdicts)))
        print("  median time: " + ", ".join(
            f"{b}x{s} {statistics.median(t):.2f} s" for (b, s), t in times.items() if t), flush=True)
    print("\n== Verdicts that change with the shape: " + (str(len(changed)) if changed else "none"))
    for line in changed:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
