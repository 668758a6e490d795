"""Public checks for the practice tasks (training.py, visualize.py) and the bonus (scaling.py).

Run `python -m pytest` in this folder. They only check what the functions
return, on tiny data; the grader checks how they train and evaluate. The
scaling checks are skipped until you start the bonus.
"""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from training import evaluate, get_device, make_synthetic_dataset, train_and_compare, train_one_epoch
from visualize import feature_maps, filter_grid, first_conv, save_filter_grid


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def loaders():
    data = make_synthetic_dataset(num_samples=64, image_size=8)
    train, test = torch.utils.data.random_split(data, [48, 16], generator=torch.Generator().manual_seed(0))
    return DataLoader(train, batch_size=16), DataLoader(test, batch_size=16)


def test_public_get_device():
    device = get_device()
    assert isinstance(device, torch.device)
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_train_one_epoch_returns_a_float():
    model = tiny_model()
    train_loader, _ = loaders()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = train_one_epoch(model, train_loader, optimizer, nn.CrossEntropyLoss(), torch.device("cpu"))
    assert isinstance(loss, float) and math.isfinite(loss)


def test_evaluate_returns_loss_and_accuracy():
    _, test_loader = loaders()
    loss, accuracy = evaluate(tiny_model(), test_loader, nn.CrossEntropyLoss(), torch.device("cpu"))
    assert isinstance(loss, float) and loss > 0
    assert 0.0 <= accuracy <= 1.0


def test_public_train_and_compare_returns_a_report():
    train_loader, test_loader = loaders()
    report = train_and_compare({"a": tiny_model(), "b": tiny_model()}, train_loader, test_loader, epochs=2,
                               device=torch.device("cpu"))
    assert list(report) == ["a", "b"]
    for row in report.values():
        assert set(row) == {"accuracy", "params", "train_time_s", "history"}
        assert row["params"] == 330
        assert len(row["history"]) == 2


def test_first_conv_and_filter_grid():
    model = tiny_model()
    assert first_conv(model) is model[0]
    grid = filter_grid(model)
    # 8 filters of 3x3 -> 3 columns, 3 rows, 1 pixel of padding around each
    assert grid.shape == (3, 13, 13)
    assert 0.0 <= float(grid.min()) and float(grid.max()) <= 1.0


def test_feature_maps_shape():
    model = tiny_model()
    maps = feature_maps(model, model[2], torch.randn(4, 3, 8, 8))
    assert maps.shape == (8, 8, 8)


def test_save_filter_grid_writes_a_png(tmp_path):
    path = tmp_path / "filters.png"
    save_filter_grid(tiny_model(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bonus(fn, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        pytest.skip("bonus not attempted yet")


def test_scaling_docstring_examples():
    import scaling

    assert _bonus(scaling.compound_coefficients, 0) == pytest.approx((1.0, 1.0, 1.0))
    assert _bonus(scaling.round_channels, 64, 1.1) == 72
    assert _bonus(scaling.round_channels, 512, 1.1) == 560
    assert _bonus(scaling.round_depth, 2, 1.2) == 3
    assert _bonus(scaling.round_resolution, 32, 1.15) == 37
