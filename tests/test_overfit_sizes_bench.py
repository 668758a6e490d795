"""bench/overfit_sizes.py reads the overfitting tests' own settings and picks the corpus cases they judge."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from benches import load_bench

ROOT = Path(__file__).resolve().parents[1]

# Run apart: reading the settings imports the hidden suite's modules, and loading a network imports lesson
# modules by their plain names, neither of which belongs in this process.
PROBE = """
import inspect, json, sys
sys.path.insert(0, "tests")
from benches import load_bench
bench = load_bench("overfit_sizes")
from grader.worker.probes.training import overfit
spec = bench.find_spec("day09")
out = {"settings": {}, "cases": {}, "loaded": {}}
for network, (module, ctor_args) in bench.NETWORKS.items():
    params, below = bench.test_settings(spec, module)
    inspect.signature(overfit).bind(lambda: None, **params)  # every parameter is one the probe takes
    out["settings"][network] = {"params": params, "below": below}
    out["cases"][network] = [label for label, _ in bench.cases_for(spec, network)]
case = bench.CORPUS / "right" / "vgg_ordered_dict"
before = list(sys.path)
cls = bench.load_network(spec, case, "SimplifiedVGG")
out["loaded"] = {"file": inspect.getsourcefile(cls), "path_restored": sys.path == before,
                 "params": sum(p.numel() for p in cls().parameters())}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bench_view() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_settings_are_the_tests_own(bench_view):
    settings = bench_view["settings"]
    assert set(settings) == {"SimplifiedVGG", "ResNet", "ModernCNN", "SimplifiedInception", "MobileNetV1"}
    for network, entry in settings.items():
        batch, channels, height, width = entry["params"]["input_shape"]
        assert (channels, height, width) == (3, 32, 32), network
        assert batch >= 2 and entry["params"]["steps"] > 0, network
        assert 0 < entry["below"] < 2.3, network  # below ln(10): the loss of an untrained 10-class network
    assert settings["SimplifiedVGG"]["params"]["mode"] == "eval"
    assert settings["SimplifiedVGG"]["below"] == 0.3 and settings["MobileNetV1"]["below"] == 0.25


def test_cases_are_those_the_networks_own_test_judges(bench_view):
    cases = bench_view["cases"]
    for network, labels in cases.items():
        assert labels[0] == "reference", network
        assert any(label.startswith("right/") for label in labels), network
    # a mistake of the network itself is in; one in its block is graded with the block's stand-in, so out
    assert "wrong/mobilenet_softmax_output" in cases["MobileNetV1"]
    assert "wrong/mobilenet_instance_norm" not in cases["MobileNetV1"]
    assert "wrong/vgg_dropout_always" in cases["SimplifiedVGG"]
    assert "wrong/vgg_avg_pool" not in cases["SimplifiedVGG"]
    assert not any("inception" in label for label in cases["SimplifiedVGG"])


def test_a_case_file_is_laid_over_the_reference(bench_view):
    loaded = bench_view["loaded"]
    assert loaded["file"].endswith("tests/corpus/right/vgg_ordered_dict/vgg.py")
    assert loaded["path_restored"]
    assert loaded["params"] == 8_952_138


@pytest.mark.parametrize("text, shape", [("4x32", (4, 32)), ("2X16", (2, 16))])
def test_shape_argument(text, shape):
    assert load_bench("overfit_sizes").parse_shape(text) == shape


@pytest.mark.parametrize("text", ["4by32", "4x", "0x32", "4x-1"])
def test_bad_shape_argument_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        load_bench("overfit_sizes").parse_shape(text)
