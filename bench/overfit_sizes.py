"""Can the overfitting checks run on a smaller batch or image and still separate right from wrong?

Run (from the project's root):

    .venv/bin/python bench/overfit_sizes.py [--shape 4x32 --shape 2x32 ...] [--network SimplifiedVGG ...]

For each network with an overfitting test in the Day 9 suite, it runs that test's
``overfit`` probe, with the test's own parameters (``OVERFIT`` and ``OVERFIT_BELOW``
in the hidden test module), on the reference and on every corpus case that
targets the network and whose mistake, if it names one, is the network's own
(the case's ``targets`` and ``cause``, read by the audit's ``load_corpus``), once per ``--shape``
(``BxS``: the batch and the image's side; the test's own shape first). It
prints, per case and shape, the losses taken, the lowest loss, whether the test
would pass (every loss finite, the lowest below the test's threshold, every
parameter given a gradient), and the probe's time; then, per network, the median time per shape
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
import importlib
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.authoring.audit import Case, load_corpus  # noqa: E402
from grader.spec import AssignmentSpec, find_spec  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"

# network -> (its hidden test module, the constructor arguments its overfitting test uses)
NETWORKS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "SimplifiedVGG": ("test_vgg", ()),
    "ResNet": ("test_resnet", ([1, 1, 1, 1], 10)),
    "ModernCNN": ("test_modern", ()),
    "SimplifiedInception": ("test_inception", ()),
    "MobileNetV1": ("test_mobilenet", ()),
}


def parse_shape(text: str) -> tuple[int, int]:
    try:
        batch, side = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is BATCHxSIDE, such as 4x32; got {text!r}") from None
    if batch < 1 or side < 1:
        raise argparse.ArgumentTypeError(f"batch and side must be positive; got {text!r}")
    return batch, side


def test_settings(spec: AssignmentSpec, module_name: str) -> tuple[dict[str, Any], float]:
    """The overfitting test's probe parameters and the loss it must get below, read from the hidden suite."""
    if str(spec.hidden_tests) not in sys.path:
        sys.path.insert(0, str(spec.hidden_tests))
    module = importlib.import_module(module_name)
    return dict(module.OVERFIT), float(module.OVERFIT_BELOW)


def load_network(spec: AssignmentSpec, case_dir: Path | None, name: str) -> Callable[..., Any]:
    """The network's class from its file in ``case_dir`` laid over the reference (the reference's own if no case)."""
    file = spec.target(name).file
    for lesson_file in spec.files:
        sys.modules.pop(Path(lesson_file).stem, None)
    folders = ([str(case_dir)] if case_dir else []) + [str(spec.reference)]
    sys.path[:0] = folders
    try:
        module_spec = importlib.util.spec_from_file_location(Path(file).stem, Path(folders[0]) / file)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[Path(file).stem] = module
        module_spec.loader.exec_module(module)
        return getattr(module, name)
    finally:
        del sys.path[: len(folders)]


def cases_for(spec: AssignmentSpec, network: str) -> list[tuple[str, Path | None]]:
    """The reference, then the corpus cases that target ``network`` with its file and no mistake of a block's."""
    def judged(case: Case) -> bool:
        own_mistake = case.cause is None or case.cause.split(".")[0] == network
        return network in case.targets and own_mistake and spec.target(network).file in case.files

    return [("reference", None)] + [(case.label, case.folder) for case in load_corpus(spec, CORPUS) if judged(case)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=parse_shape, action="append", default=None,
                        help="BATCHxSIDE to try besides the test's own (repeatable; default 2x32)")
    parser.add_argument("--network", action="append", choices=sorted(NETWORKS), default=None)
    args = parser.parse_args()

    import torch

    from grader.worker.probes.core import has_lazy_layers, materialise
    from grader.worker.probes.training import overfit

    torch.set_num_threads(1)
    print(f"machine: {platform.platform()}; {platform.processor() or platform.machine()}; "
          f"{len(os.sched_getaffinity(0))} usable cores; python {platform.python_version()}; torch {torch.__version__}; "
          "one torch thread", flush=True)
    spec = find_spec("day09")
    changed: list[str] = []
    for network in args.network or list(NETWORKS):
        test_module, ctor_args = NETWORKS[network]
        dry_run_input = list(spec.target(network).dry_run_input)
        params, below = test_settings(spec, test_module)
        own = (params["input_shape"][0], params["input_shape"][2])
        shapes = [own] + [s for s in (args.shape or [(2, 32)]) if s != own]
        print(f"\n== {network}: {test_module}.OVERFIT {params}, passes below {below:g}; shapes "
              + ", ".join(f"{b}x{s}" for b, s in shapes), flush=True)
        times: dict[tuple[int, int], list[float]] = {s: [] for s in shapes}
        for label, case_dir in cases_for(spec, network):
            try:
                cls = load_network(spec, case_dir, network)
            except Exception as e:  # noqa: BLE001 - a case that cannot be imported is reported, not fatal
                print(f"  {label:44s} import failed: {type(e).__name__}: {e}", flush=True)
                continue
            verdicts, cells = [], []
            for batch, side in shapes:
                shape = [batch, 3, side, side]

                def build() -> Any:
                    model = cls(*ctor_args)
                    if has_lazy_layers(model):
                        materialise(model, dry_run_input)  # the documented input, as the suite does
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
                passed = (bool(losses) and all(map(math.isfinite, losses)) and min(losses) < below
                          and not result["without_grad"])
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
