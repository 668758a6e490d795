"""Practice task: train several architectures side by side and compare them.

``train_and_compare`` trains every model on the same data with the same
optimizer settings and reports accuracy, parameter count, training time and the
loss curve of each. ``make_synthetic_dataset`` (provided) generates a small
image set that needs no download.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset


def get_device() -> torch.device:
    """The device to train on: ``torch.device("cuda")`` when a GPU is available, else ``torch.device("cpu")``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_synthetic_dataset(
    num_samples: int = 512, num_classes: int = 10, image_size: int = 32, seed: int = 0
) -> TensorDataset:
    """A learnable image classification set, generated on the spot (provided, nothing to implement).

    Every class has its own smooth colour pattern (random 4x4 values per
    channel, upsampled bilinearly to ``image_size``); an image is its class's
    pattern plus Gaussian noise. Labels are balanced (``i % num_classes``) and
    shuffled. The same arguments always give the same data; the seed also
    draws the class patterns, so make a train/test split by generating one set
    and splitting it (``torch.utils.data.random_split``), not with two seeds.

    Returns:
        ``TensorDataset(images, labels)`` with ``images`` float32 of shape
        ``(num_samples, 3, image_size, image_size)`` and ``labels`` int64 of
        shape ``(num_samples,)`` in ``[0, num_classes)``.
    """
    if num_samples < 1 or num_classes < 2 or image_size < 1:
        raise ValueError("need num_samples >= 1, num_classes >= 2 and image_size >= 1")
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(num_classes, 3, 4, 4, generator=generator)
    patterns = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)
    labels = (torch.arange(num_samples) % num_classes)[torch.randperm(num_samples, generator=generator)]
    noise = torch.randn(num_samples, 3, image_size, image_size, generator=generator)
    images = patterns[labels] + 0.8 * noise
    return TensorDataset(images.float(), labels.long())


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    device: torch.device | str,
) -> float:
    """Train ``model`` for one pass over ``loader`` and return the mean batch loss.

    Puts the model in training mode (``model.train()``: dropout on, BatchNorm
    uses batch statistics), then for every ``(inputs, labels)`` batch: moves both
    to ``device``, clears old gradients (``optimizer.zero_grad()``), computes
    ``criterion(model(inputs), labels)``, backpropagates and takes an optimizer
    step. Losses are accumulated as Python floats (``loss.item()``) so no graph
    is kept alive.

    Returns:
        The mean of the batch losses (0.0 for an empty loader).
    """
    model.train()
    total, batches = 0.0, 0
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / batches if batches else 0.0


def evaluate(
    model: nn.Module, loader: Iterable, criterion: nn.Module, device: torch.device | str
) -> tuple[float, float]:
    """Measure ``model`` on ``loader`` without training it.

    Runs in evaluation mode (``model.eval()``: dropout off, BatchNorm uses its
    running statistics) and under ``torch.no_grad()``. The predicted class is the
    arg-max of the logits.

    Returns:
        ``(mean_loss, accuracy)``: the loss averaged over samples and the
        fraction of correct predictions in ``[0, 1]`` (both 0.0 for an empty loader).
    """
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            logits = model(inputs)
            total_loss += criterion(logits, labels).item() * labels.size(0)
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += labels.size(0)
    if seen == 0:
        return 0.0, 0.0
    return total_loss / seen, correct / seen


def train_and_compare(
    models: Mapping[str, nn.Module],
    train_loader: Iterable,
    test_loader: Iterable,
    epochs: int = 1,
    lr: float = 1e-3,
    device: torch.device | str | None = None,
) -> dict[str, dict[str, Any]]:
    """Train each model the same way and collect a comparison table.

    Every model is moved to ``device`` (default: ``get_device()``), trained for
    ``epochs`` epochs with ``torch.optim.Adam(model.parameters(), lr=lr)`` and
    ``nn.CrossEntropyLoss()``, then evaluated on ``test_loader``. Training time
    is wall-clock time around the epochs; on a GPU, ``torch.cuda.synchronize()``
    is called before reading the clock, because CUDA kernels run asynchronously.

    Returns:
        ``{name: {"accuracy": float, "params": int, "train_time_s": float,
        "history": [mean train loss of each epoch]}}``, in the order of ``models``.
    """
    device = torch.device(device) if device is not None else get_device()
    results: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        criterion = nn.CrossEntropyLoss()
        history: list[float] = []
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(epochs):
            history.append(train_one_epoch(model, train_loader, optimizer, criterion, device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
        _, accuracy = evaluate(model, test_loader, criterion, device)
        results[name] = {
            "accuracy": accuracy,
            "params": sum(p.numel() for p in model.parameters()),
            "train_time_s": elapsed,
            "history": history,
        }
    return results
