"""The Day 9 reference solution: parameter counts, shapes, behaviour, training, visualisation, scaling.

The reference is a flat folder of modules that import each other by plain name
(``from resnet import ResidualBlock``), like a submission. It is loaded with
its own entries in ``sys.modules`` that are put back afterwards, so other test
files can load other folders with the same module names.
"""

from __future__ import annotations

import importlib
import inspect
import math
import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "day09"
MODULES = ("vgg", "resnet", "inception", "mobilenet", "modern", "training", "visualize", "scaling")


def load_folder(folder: Path, names=MODULES) -> SimpleNamespace:
    """Import the flat modules ``names`` from ``folder`` without leaving them in ``sys.modules``."""
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        return SimpleNamespace(**{n: importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(folder))
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def ref() -> SimpleNamespace:
    torch.manual_seed(0)
    return load_folder(REFERENCE)


# ----------------------------------------------------------------------------- parameter counts

PARAM_COUNTS = [
    ("vgg", "SimplifiedVGG", (), 8_952_138),
    ("resnet", "ResNet", ([2, 2, 2, 2],), 11_173_962),
    ("resnet", "resnet18", (), 11_173_962),
    ("inception", "SimplifiedInception", (), 583_410),
    ("mobilenet", "MobileNetV1", (), 274_250),
    ("modern", "ModernCNN", (), 11_100_042),
    ("vgg", "VGGBlock", (3, 64, 2), 38_720),
    ("resnet", "ResidualBlock", (64, 64), 73_984),
    ("resnet", "ResidualBlock", (64, 128, 2), 230_144),
    ("resnet", "ResidualBlock", (64, 128, 1), 230_144),
    ("resnet", "ResidualBlock", (64, 64, 2), 78_208),
    ("resnet", "WithSkipBlock", (16,), 4_640),
    ("resnet", "NoSkipBlock", (16,), 4_640),
    ("inception", "InceptionModule", (64, 32, 48, 64, 8, 16, 16), 37_688),
    ("mobilenet", "DepthwiseSeparableConv", (32, 64), 2_528),
    ("scaling", "ScaledResNet", (1.0, 1.0), 11_173_962),
]


@pytest.mark.parametrize(("module", "name", "args", "expected"), PARAM_COUNTS,
                         ids=[f"{n}{a}" for _, n, a, _ in PARAM_COUNTS])
def test_parameter_count(ref, module, name, args, expected):
    assert count(getattr(getattr(ref, module), name)(*args)) == expected


def test_num_classes_changes_only_the_head(ref):
    assert count(ref.resnet.ResNet([2, 2, 2, 2], 100)) - count(ref.resnet.ResNet([2, 2, 2, 2], 10)) == 90 * 513
    assert count(ref.mobilenet.MobileNetV1(num_classes=2)) == 274_250 - 8 * 513


def test_resnet_default_and_positional_block_list(ref):
    params = inspect.signature(ref.resnet.ResNet).parameters
    assert list(params) == ["num_blocks_per_stage", "num_classes"]
    assert list(params["num_blocks_per_stage"].default) == [2, 2, 2, 2]
    assert count(ref.resnet.ResNet()) == 11_173_962
    assert count(ref.resnet.ResNet([1, 1, 1, 1])) == 11_173_962 - (73_984 + 295_424 + 1_180_672 + 4_720_640)
    with pytest.raises(ValueError):
        ref.resnet.ResNet([2, 2, 2])


# ----------------------------------------------------------------------------- shapes

SHAPES = [
    ("vgg", "VGGBlock", (3, 8, 2), (2, 3, 9, 9), (2, 8, 4, 4)),
    ("vgg", "SimplifiedVGG", (), (2, 3, 32, 32), (2, 10)),
    ("resnet", "ResidualBlock", (8, 8), (2, 8, 9, 9), (2, 8, 9, 9)),
    ("resnet", "ResidualBlock", (8, 16, 2), (2, 8, 9, 9), (2, 16, 5, 5)),
    ("resnet", "ResNet", ([1, 1, 1, 1], 7), (2, 3, 16, 16), (2, 7)),
    ("resnet", "resnet18", (), (2, 3, 32, 32), (2, 10)),
    ("resnet", "NoSkipBlock", (4,), (2, 4, 7, 7), (2, 4, 7, 7)),
    ("resnet", "WithSkipBlock", (4,), (2, 4, 7, 7), (2, 4, 7, 7)),
    ("inception", "InceptionModule", (64, 32, 48, 64, 8, 16, 16), (2, 64, 9, 9), (2, 128, 9, 9)),
    ("inception", "SimplifiedInception", (), (2, 3, 16, 16), (2, 10)),
    ("mobilenet", "DepthwiseSeparableConv", (8, 16, 2), (2, 8, 9, 9), (2, 16, 5, 5)),
    ("mobilenet", "MobileNetV1", (5,), (2, 3, 16, 16), (2, 5)),
    ("modern", "ModernCNN", (), (2, 3, 16, 16), (2, 10)),
    ("scaling", "ScaledResNet", (0.5, 0.5, 3), (2, 3, 16, 16), (2, 3)),
]


@pytest.mark.parametrize(("module", "name", "args", "shape_in", "shape_out"), SHAPES,
                         ids=[f"{n}{a}" for _, n, a, _, _ in SHAPES])
def test_output_shape(ref, module, name, args, shape_in, shape_out):
    """Blocks on odd sizes (padding mistakes show), networks on small images (they end in global pooling)."""
    model = getattr(getattr(ref, module), name)(*args).eval()
    x = torch.randn(shape_in)
    x0 = x.clone()
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == shape_out
    assert torch.equal(x, x0), "forward must not modify its input"


def test_depthwise_conv_is_grouped(ref):
    block = ref.mobilenet.DepthwiseSeparableConv(8, 16, stride=2)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.groups, c.stride) for c in convs] == [((3, 3), 8, (2, 2)), ((1, 1), 1, (1, 1))]


def test_residual_block_skip_is_identity_when_branch_is_zero(ref):
    block = ref.resnet.ResidualBlock(8, 8).eval()
    for m in block.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1):
            nn.init.zeros_(m.weight)
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    y = block(x * 1.0)
    torch.testing.assert_close(y, torch.relu(x))
    y.sum().backward()
    assert x.grad.abs().sum() > 0


def test_residual_block_projects_only_when_needed(ref):
    def n_convs(block):
        return sum(isinstance(m, nn.Conv2d) for m in block.modules())

    assert n_convs(ref.resnet.ResidualBlock(8, 8)) == 2
    assert n_convs(ref.resnet.ResidualBlock(8, 8, 2)) == 3
    assert n_convs(ref.resnet.ResidualBlock(8, 16)) == 3


def test_with_skip_adds_input_and_no_skip_does_not(ref):
    x = torch.randn(2, 4, 6, 6)
    for cls, expected in ((ref.resnet.WithSkipBlock, x), (ref.resnet.NoSkipBlock, torch.zeros_like(x))):
        block = cls(4)
        for p in block.parameters():
            nn.init.zeros_(p)
        with torch.no_grad():
            torch.testing.assert_close(block(x), expected)


def test_inception_branches_in_order(ref):
    module = ref.inception.InceptionModule(4, 1, 2, 2, 2, 3, 5).eval()
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 0.1)
            nn.init.zeros_(m.bias)
    x = torch.zeros(1, 4, 9, 9)
    x[0, :, 4, 4] = 1.0
    with torch.no_grad():
        y = module(x)
    assert y.shape == (1, 11, 9, 9)
    support = [int((y[0, c].abs() > 0).any(dim=0).sum()) for c in (0, 1, 3, 6)]
    assert support == [1, 3, 5, 3]  # 1x1, 3x3, 5x5, pool (3x3 window) branches


def test_dropout_only_in_training(ref):
    model = ref.inception.SimplifiedInception()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), model(x))
        model.train()
        torch.manual_seed(1)
        a = model(x)
        torch.manual_seed(2)
        assert not torch.equal(a, model(x))


def test_resnet18_factory(ref):
    model = ref.resnet.resnet18(num_classes=4)
    assert isinstance(model, ref.resnet.ResNet)
    assert [p.shape for p in model.parameters()] == [p.shape for p in ref.resnet.ResNet([2, 2, 2, 2], 4).parameters()]


def test_modern_cnn_uses_residual_blocks(ref):
    model = ref.modern.ModernCNN()
    blocks = [m for m in model.modules() if isinstance(m, ref.resnet.ResidualBlock)]
    assert len(blocks) == 7


def test_meta_device_forward(ref):
    for model in (ref.resnet.ResidualBlock(8, 16, 2), ref.mobilenet.MobileNetV1(), ref.inception.InceptionModule(8, 2, 2, 2, 2, 2, 2)):
        model = model.to("meta").eval()
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        y = model(torch.empty(2, first.in_channels, 8, 8, device="meta"))
        assert y.device.type == "meta"


# ----------------------------------------------------------------------------- training.py

def tiny_model(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(128, num_classes))


def test_get_device(ref):
    device = ref.training.get_device()
    assert isinstance(device, torch.device)
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_synthetic_dataset(ref):
    ds = ref.training.make_synthetic_dataset(num_samples=50, num_classes=5, image_size=8, seed=3)
    images, labels = ds.tensors
    assert images.shape == (50, 3, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (50,) and labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [10] * 5
    again = ref.training.make_synthetic_dataset(num_samples=50, num_classes=5, image_size=8, seed=3)
    assert torch.equal(images, again.tensors[0]) and torch.equal(labels, again.tensors[1])
    other = ref.training.make_synthetic_dataset(num_samples=50, num_classes=5, image_size=8, seed=4)
    assert not torch.equal(images, other.tensors[0])


def test_train_one_epoch_and_evaluate(ref):
    torch.manual_seed(0)
    ds = ref.training.make_synthetic_dataset(num_samples=64, image_size=8)
    loader = DataLoader(ds, batch_size=16)
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = nn.CrossEntropyLoss()
    model.eval()
    loss = ref.training.train_one_epoch(model, loader, optimizer, criterion, "cpu")
    assert isinstance(loss, float) and math.isfinite(loss)
    assert model.training, "train_one_epoch must put the model in training mode"
    eval_loss, accuracy = ref.training.evaluate(model, loader, criterion, "cpu")
    assert not model.training, "evaluate must put the model in evaluation mode"
    assert isinstance(eval_loss, float) and 0.0 <= accuracy <= 1.0
    # evaluate's loss is the per-sample mean, also with an uneven last batch
    with torch.no_grad():
        direct = criterion(model(ds.tensors[0]), ds.tensors[1]).item()
    assert eval_loss == pytest.approx(ref.training.evaluate(model, DataLoader(ds, batch_size=24), criterion, "cpu")[0])
    assert eval_loss == pytest.approx(direct, rel=1e-5)


def test_evaluate_does_not_track_gradients(ref):
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = tiny_model()

        def forward(self, x):
            seen.append(torch.is_grad_enabled())
            return self.inner(x)

    ds = TensorDataset(torch.randn(8, 3, 8, 8), torch.arange(8) % 10)
    ref.training.evaluate(Spy(), DataLoader(ds, batch_size=4), nn.CrossEntropyLoss(), "cpu")
    assert seen == [False, False]


def test_train_and_compare_learns(ref):
    torch.manual_seed(0)
    ds = ref.training.make_synthetic_dataset(num_samples=160, image_size=8, seed=1)
    train, test = torch.utils.data.random_split(ds, [128, 32], generator=torch.Generator().manual_seed(0))
    models = {"tiny": tiny_model(), "linear": nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))}
    results = ref.training.train_and_compare(
        models, DataLoader(train, batch_size=32, shuffle=True), DataLoader(test, batch_size=32),
        epochs=4, lr=3e-3, device="cpu",
    )
    assert list(results) == ["tiny", "linear"]
    for name, row in results.items():
        assert set(row) == {"accuracy", "params", "train_time_s", "history"}
        assert row["params"] == count(models[name])
        assert len(row["history"]) == 4 and row["history"][-1] < row["history"][0]
        assert row["train_time_s"] > 0
    assert results["linear"]["accuracy"] >= 0.5  # chance is 0.1


# ----------------------------------------------------------------------------- visualize.py

def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])  # (width, height)


def test_first_conv(ref):
    model = ref.mobilenet.MobileNetV1()
    assert ref.visualize.first_conv(model) is model.stem[0]
    with pytest.raises(ValueError):
        ref.visualize.first_conv(nn.Linear(2, 2))


def test_filter_grid(ref):
    model = ref.resnet.ResidualBlock(3, 10)  # first conv: 10 filters of 3x3 on RGB
    grid = ref.visualize.filter_grid(model)
    assert grid.shape == (3, 3 * 4 + 1, 4 * 4 + 1)  # ceil(sqrt(10)) = 4 columns, 3 rows
    assert grid.min() >= 0 and grid.max() <= 1
    first = grid[:, 1:4, 1:4]
    assert first.min() == 0 and first.max() == 1, "each filter is min-max normalised on its own"
    grey = ref.visualize.filter_grid(nn.Conv2d(5, 4, 5), padding=2)
    assert grey.shape == (3, 2 * 7 + 2, 2 * 7 + 2)
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_feature_maps(ref):
    model = ref.mobilenet.MobileNetV1()
    model.train()
    layer = model.blocks[1]
    x = torch.randn(2, 3, 16, 16)
    maps = ref.visualize.feature_maps(model, layer, x)
    assert maps.shape == (128, 8, 8) and not maps.requires_grad
    assert not layer._forward_hooks, "the hook must be removed"
    assert model.training, "the model's mode is restored"
    model.eval()
    with torch.no_grad():
        expected = model.blocks[:2](model.stem(x))[0]
    torch.testing.assert_close(maps, expected)


def test_pngs_written(ref, tmp_path):
    model = ref.vgg.VGGBlock(3, 64, 1)
    path = ref.visualize.save_filter_grid(model, tmp_path / "filters.png")
    assert Path(path) == tmp_path / "filters.png"
    assert png_size(tmp_path / "filters.png") == (8 * 4 + 1, 8 * 4 + 1)

    net = ref.mobilenet.MobileNetV1()
    ref.visualize.save_feature_maps(net, net.blocks[0], torch.randn(1, 3, 12, 12), tmp_path / "maps.png")
    assert png_size(tmp_path / "maps.png") == (4 * 13 + 1, 4 * 13 + 1)  # 16 maps of 12x12
    ref.visualize.save_feature_maps(net, net.blocks[0], torch.randn(1, 3, 12, 12), tmp_path / "few.png", max_maps=5)
    assert png_size(tmp_path / "few.png") == (3 * 13 + 1, 2 * 13 + 1)


# ----------------------------------------------------------------------------- scaling.py

def test_compound_coefficients(ref):
    s = ref.scaling
    assert (s.ALPHA, s.BETA, s.GAMMA) == (1.2, 1.1, 1.15)
    assert s.compound_coefficients(0) == (1.0, 1.0, 1.0)
    d, w, r = s.compound_coefficients(2)
    assert (d, w, r) == pytest.approx((1.44, 1.21, 1.3225))
    assert s.compound_coefficients(1, alpha=2.0, beta=3.0, gamma=4.0) == (2.0, 3.0, 4.0)
    assert s.ALPHA * s.BETA**2 * s.GAMMA**2 == pytest.approx(1.92, abs=0.01)


@pytest.mark.parametrize(("channels", "mult", "divisor", "expected"), [
    (64, 1.0, 8, 64), (64, 1.1, 8, 72), (128, 1.1, 8, 144), (256, 1.1, 8, 280), (512, 1.1, 8, 560),
    (3, 1.0, 8, 8), (20, 1.0, 8, 24), (12, 1.0, 8, 16), (100, 0.5, 8, 48), (27, 1.0, 8, 32), (10, 1.0, 16, 16), (30, 1.0, 16, 32),
])
def test_round_channels(ref, channels, mult, divisor, expected):
    assert ref.scaling.round_channels(channels, mult, divisor) == expected


def test_round_depth_and_resolution(ref):
    s = ref.scaling
    assert [s.round_depth(2, m) for m in (1.0, 1.2, 1.44, 1.728, 0.4)] == [2, 3, 3, 4, 1]
    assert [s.round_resolution(32, m) for m in (1.0, 1.15, 1.3225)] == [32, 37, 42]
    assert all(isinstance(v, int) for v in (s.round_depth(2, 1.2), s.round_resolution(32, 1.15)))


def test_efficientnet_style(ref):
    model, resolution = ref.scaling.efficientnet_style(0)
    assert resolution == 32 and count(model) == 11_173_962
    model, resolution = ref.scaling.efficientnet_style(1, num_classes=3, base_resolution=16)
    assert resolution == 18
    widths = sorted({m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)})
    assert widths == [72, 144, 280, 560]
    blocks = [m for m in model.modules() if isinstance(m, ref.resnet.ResidualBlock)]
    assert len(blocks) == 12  # ceil(2 * 1.2) = 3 per stage
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 3)
