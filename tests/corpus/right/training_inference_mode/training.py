"""Training practice task with inference_mode and model.zero_grad()."""

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset


def get_device():
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


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


def train_one_epoch(model, loader, optimizer, criterion, device):
    model.train()
    running = 0.0
    n_batches = 0
    for x, y in loader:
        x = x.to(device)
        y = y.to(device)
        model.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running += loss.detach().item()
        n_batches += 1
    if n_batches == 0:
        return 0.0
    return running / n_batches


def evaluate(model, loader, criterion, device):
    model.eval()
    total, correct, loss_total = 0, 0, 0.0
    with torch.inference_mode():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss_total += criterion(logits, y).item() * len(y)
            correct += (torch.argmax(logits, dim=1) == y).sum().item()
            total += len(y)
    if total == 0:
        return 0.0, 0.0
    return loss_total / total, correct / total


def train_and_compare(models, train_loader, test_loader, epochs=1, lr=1e-3, device=None):
    if device is None:
        device = get_device()
    device = torch.device(device)
    results = {}
    for name, model in models.items():
        model = model.to(device)
        optimizer = torch.optim.Adam(params=model.parameters(), lr=lr)
        criterion = nn.CrossEntropyLoss()
        history = []
        start = time.time()
        for _ in range(epochs):
            history.append(train_one_epoch(model, train_loader, optimizer, criterion, device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_time = time.time() - start
        test_loss, test_acc = evaluate(model, test_loader, criterion, device)
        results[name] = {"accuracy": test_acc, "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                         "train_time_s": train_time, "history": history}
    return results
