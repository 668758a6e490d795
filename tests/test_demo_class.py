"""The demo class in ``submissions/`` is what it claims to be.

- alice: correct in another style than the reference (names, F.relu, explicit
  layers, shortcut registered first, ``None`` shortcut, ``view``): the same
  parameter counts and the same outputs once both models carry weights keyed on
  (layer type, tensor role, shape);
- bob: typical mistakes (ReLU before the add, projection always, no ``groups=``,
  5x5 branch with padding 1), the rest correct;
- carol: VGG and ResNet done, the other files still the raw skeleton;
- dave: a syntax error in resnet.py, a module that raises at import, the rest
  stubs or partial.

These folders are our own test corpus, so importing them in-process is fine here.
"""

from __future__ import annotations

import importlib
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "day09"
SUBMISSIONS = ROOT / "submissions"
SKELETON = ROOT / "assignments" / "day09"
MODULES = ("vgg", "resnet", "inception", "mobilenet", "modern", "training", "visualize", "scaling")


def load_folder(folder: Path, names=MODULES) -> SimpleNamespace:
    """Import the flat modules ``names`` from ``folder`` without leaving them in ``sys.modules``."""
    saved = {n: sys.modules.pop(n) for n in MODULES if n in sys.modules}
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        return SimpleNamespace(**{n: importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(folder))
        for n in MODULES:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- keyed weights

def _key_seed(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


@torch.no_grad()
def keyed_fill(model: nn.Module) -> nn.Module:
    """Give every floating parameter and buffer a value that depends only on (layer type, role, shape).

    Names, nesting and registration order do not matter, so two functionally
    equivalent models written in different styles compute the same function.
    """
    for module in model.modules():
        tensors = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        for role, tensor in tensors:
            if tensor is None or not tensor.is_floating_point():
                continue
            shape = tuple(tensor.shape)
            g = torch.Generator().manual_seed(_key_seed(type(module).__name__, role, shape))
            if role == "running_var" or (role == "weight" and tensor.dim() == 1):
                value = 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)
            elif tensor.dim() > 1:
                fan_in = max(1, tensor[0].numel())
                value = torch.randn(shape, generator=g, dtype=torch.float64) * (2.0 / fan_in) ** 0.5
            else:
                value = 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
            tensor.copy_(value.to(tensor.dtype))
    return model


def same_function(make_ref, make_other, shape, train: bool = False, seed: int = 0) -> None:
    ref, other = keyed_fill(make_ref().double()), keyed_fill(make_other().double())
    ref.train(train)
    other.train(train)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(other(x.clone()), ref(x.clone()), rtol=1e-9, atol=1e-9)


def test_keyed_fill_ignores_names_and_order():
    a = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    b = nn.ModuleDict({"norm": nn.BatchNorm2d(4), "conv": nn.Conv2d(3, 4, 3)})
    keyed_fill(a)
    keyed_fill(b)
    assert torch.equal(a[0].weight, b["conv"].weight) and torch.equal(a[1].running_var, b["norm"].running_var)
    assert not torch.equal(a[0].weight.flatten()[:4], a[0].bias)


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def ref():
    return load_folder(REFERENCE)


@pytest.fixture(scope="module")
def alice():
    return load_folder(SUBMISSIONS / "alice")


@pytest.fixture(scope="module")
def bob():
    return load_folder(SUBMISSIONS / "bob")


@pytest.fixture(scope="module")
def carol():
    return load_folder(SUBMISSIONS / "carol")


def test_every_student_has_the_eight_files():
    for student in ("alice", "bob", "carol", "dave"):
        assert sorted(p.name for p in (SUBMISSIONS / student).glob("*.py")) == sorted(f"{m}.py" for m in MODULES)


# ----------------------------------------------------------------------------- alice: correct, another style

CLASSES = [
    ("vgg", "VGGBlock", (3, 64, 2)),
    ("vgg", "SimplifiedVGG", ()),
    ("resnet", "ResidualBlock", (64, 64)),
    ("resnet", "ResidualBlock", (64, 128, 2)),
    ("resnet", "ResidualBlock", (64, 128, 1)),
    ("resnet", "ResidualBlock", (64, 64, 2)),
    ("resnet", "ResNet", ([2, 2, 2, 2],)),
    ("resnet", "ResNet", ([1, 2, 1, 3], 5)),
    ("resnet", "resnet18", ()),
    ("resnet", "NoSkipBlock", (16,)),
    ("resnet", "WithSkipBlock", (16,)),
    ("inception", "InceptionModule", (64, 32, 48, 64, 8, 16, 16)),
    ("inception", "SimplifiedInception", ()),
    ("mobilenet", "DepthwiseSeparableConv", (32, 64)),
    ("mobilenet", "DepthwiseSeparableConv", (32, 64, 2)),
    ("mobilenet", "MobileNetV1", ()),
    ("modern", "ModernCNN", ()),
    ("scaling", "ScaledResNet", ()),
    ("scaling", "ScaledResNet", (1.1, 1.2, 7)),
]


@pytest.mark.parametrize(("module", "name", "args"), CLASSES, ids=[f"{n}{a}" for _, n, a in CLASSES])
def test_alice_parameter_counts_match_reference(ref, alice, module, name, args):
    expected = count(getattr(getattr(ref, module), name)(*args))
    assert count(getattr(getattr(alice, module), name)(*args)) == expected


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("args", [(8, 8), (8, 16, 2), (8, 16, 1), (8, 8, 2)])
def test_alice_residual_block_matches_reference(ref, alice, args, train):
    same_function(lambda: ref.resnet.ResidualBlock(*args), lambda: alice.resnet.ResidualBlock(*args), (3, 8, 9, 9),
                  train=train)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_alice_mobilenet_matches_reference(ref, alice, train):
    same_function(ref.mobilenet.MobileNetV1, alice.mobilenet.MobileNetV1, (2, 3, 16, 16), train=train)


EQUIVALENT_IN_EVAL = [
    ("vgg", "VGGBlock", (3, 8, 2), (2, 3, 9, 9)),
    ("vgg", "SimplifiedVGG", (), (2, 3, 32, 32)),
    ("resnet", "ResNet", ([1, 1, 1, 1], 5), (2, 3, 16, 16)),
    ("resnet", "NoSkipBlock", (4,), (2, 4, 7, 7)),
    ("resnet", "WithSkipBlock", (4,), (2, 4, 7, 7)),
    ("inception", "InceptionModule", (16, 4, 6, 8, 2, 4, 4), (2, 16, 9, 9)),
    ("inception", "SimplifiedInception", (), (2, 3, 16, 16)),
    ("mobilenet", "DepthwiseSeparableConv", (8, 16, 2), (2, 8, 9, 9)),
    ("modern", "ModernCNN", (), (2, 3, 16, 16)),
    ("scaling", "ScaledResNet", (0.5, 0.5, 3), (2, 3, 16, 16)),
]


@pytest.mark.parametrize(("module", "name", "args", "shape"), EQUIVALENT_IN_EVAL,
                         ids=[f"{n}{a}" for _, n, a, _ in EQUIVALENT_IN_EVAL])
def test_alice_other_classes_match_reference_in_eval(ref, alice, module, name, args, shape):
    same_function(lambda: getattr(getattr(ref, module), name)(*args),
                  lambda: getattr(getattr(alice, module), name)(*args), shape)


def test_alice_functions_agree_with_reference(ref, alice, tmp_path):
    for phi in (0, 1, 2.5):
        assert alice.scaling.compound_coefficients(phi) == pytest.approx(ref.scaling.compound_coefficients(phi))
    for channels in (3, 20, 27, 64, 100, 512):
        for mult in (0.5, 1.0, 1.1, 1.21):
            assert alice.scaling.round_channels(channels, mult) == ref.scaling.round_channels(channels, mult)
    model = ref.vgg.VGGBlock(3, 10, 1)
    torch.testing.assert_close(alice.visualize.filter_grid(model), ref.visualize.filter_grid(model))
    assert alice.training.get_device() == ref.training.get_device()


# ----------------------------------------------------------------------------- bob: typical mistakes

def test_bob_projection_always_adds_parameters(ref, bob):
    assert count(bob.resnet.ResidualBlock(64, 64)) - count(ref.resnet.ResidualBlock(64, 64)) == 4_224
    assert count(bob.resnet.ResidualBlock(64, 128, 2)) == count(ref.resnet.ResidualBlock(64, 128, 2))


def test_bob_relu_before_add_changes_outputs(ref, bob):
    with pytest.raises(AssertionError):
        same_function(lambda: ref.resnet.ResidualBlock(8, 16, 2), lambda: bob.resnet.ResidualBlock(8, 16, 2),
                      (2, 8, 9, 9))


def test_bob_depthwise_without_groups(ref, bob):
    assert count(bob.mobilenet.DepthwiseSeparableConv(32, 64)) - count(ref.mobilenet.DepthwiseSeparableConv(32, 64)) \
        == 32 * 32 * 9 - 32 * 9
    assert count(bob.mobilenet.MobileNetV1()) - count(ref.mobilenet.MobileNetV1()) == 1_512_864


def test_bob_5x5_padding_breaks_the_concatenation(bob):
    module = bob.inception.InceptionModule(16, 4, 6, 8, 2, 4, 4)
    with pytest.raises(RuntimeError):
        module(torch.randn(1, 16, 9, 9))


def test_bob_rest_is_correct(ref, bob):
    assert count(bob.vgg.SimplifiedVGG()) == 8_952_138
    same_function(lambda: ref.vgg.VGGBlock(3, 8, 2), lambda: bob.vgg.VGGBlock(3, 8, 2), (2, 3, 9, 9))
    # ModernCNN is right, but it is built from bob's ResidualBlock: its four identity-shortcut blocks
    # (64, 128, 256 and 512 channels) carry a 1x1 projection + BN each
    assert count(bob.modern.ModernCNN()) - 11_100_042 == sum(c * c + 2 * c for c in (64, 128, 256, 512))


# ----------------------------------------------------------------------------- carol: half done

def test_carol_vgg_and_resnet_done(ref, carol):
    for module, name, args in [("vgg", "SimplifiedVGG", ()), ("resnet", "ResNet", ()), ("resnet", "WithSkipBlock", (16,))]:
        assert count(getattr(getattr(carol, module), name)(*args)) == count(getattr(getattr(ref, module), name)(*args))
    same_function(lambda: ref.resnet.ResidualBlock(8, 16, 2), lambda: carol.resnet.ResidualBlock(8, 16, 2),
                  (2, 8, 9, 9), train=True)
    same_function(lambda: ref.resnet.WithSkipBlock(4), lambda: carol.resnet.WithSkipBlock(4), (2, 4, 7, 7))


def test_carol_rest_is_still_the_skeleton(carol):
    with pytest.raises(NotImplementedError):
        carol.inception.InceptionModule(64, 32, 48, 64, 8, 16, 16)
    with pytest.raises(NotImplementedError):
        carol.mobilenet.MobileNetV1()
    with pytest.raises(NotImplementedError):
        carol.modern.ModernCNN()
    with pytest.raises(NotImplementedError):
        carol.training.get_device()
    with pytest.raises(NotImplementedError):
        carol.scaling.round_channels(64, 1.1)
    for name in ("inception.py", "mobilenet.py", "modern.py", "training.py", "visualize.py", "scaling.py"):
        text = (SUBMISSIONS / "carol" / name).read_text()
        assert 'raise NotImplementedError("TODO' in text, name


# ----------------------------------------------------------------------------- dave: broken

def test_dave_resnet_has_a_syntax_error():
    path = SUBMISSIONS / "dave" / "resnet.py"
    with pytest.raises(SyntaxError):
        compile(path.read_text(), str(path), "exec")
    with pytest.raises(SyntaxError):
        load_folder(SUBMISSIONS / "dave", ["modern"])  # modern imports resnet


def test_dave_vgg_raises_at_import():
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        load_folder(SUBMISSIONS / "dave", ["vgg"])


def test_dave_partial_mobilenet(ref):
    dave = load_folder(SUBMISSIONS / "dave", ["mobilenet", "inception"])
    assert count(dave.mobilenet.DepthwiseSeparableConv(32, 64)) == 2_528
    assert dave.mobilenet.MobileNetV1()(torch.randn(1, 3, 8, 8)) is None
    with pytest.raises(NotImplementedError):
        dave.inception.SimplifiedInception()
    assert "vgg" not in sys.modules and "resnet" not in sys.modules
