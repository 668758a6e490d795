"""Training practice task, written another way."""

from time import perf_counter

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset


def get_device():
    if torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


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
    model.train(True)
    losses = []
    for step, batch in enumerate(loader):
        images, targets = (t.to(device, non_blocking=True) for t in batch)
        logits = model(images)
        loss = criterion(logits, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return sum(losses) / len(losses) if losses else 0.0


@torch.no_grad()
def evaluate(model, loader, criterion, device):
    model.eval()
    loss_sum, hits, count = 0.0, 0, 0
    for images, targets in loader:
        images = images.to(device)
        targets = targets.to(device)
        out = model(images)
        n = targets.shape[0]
        loss_sum += float(criterion(out, targets)) * n
        hits += int((out.max(1).indices == targets).sum())
        count += n
    return (loss_sum / count, hits / count) if count else (0.0, 0.0)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_and_compare(models, train_loader, test_loader, epochs=1, lr=1e-3, device=None):
    device = get_device() if device is None else device
    table = {}
    for name in models:
        model = models[name].to(device)
        opt = torch.optim.Adam(model.parameters(), lr)
        loss_fn = nn.CrossEntropyLoss()
        curve = []
        _sync(device)
        t0 = perf_counter()
        for epoch in range(epochs):
            curve.append(train_one_epoch(model, train_loader, opt, loss_fn, device))
        _sync(device)
        seconds = perf_counter() - t0
        acc = evaluate(model, test_loader, loss_fn, device)[1]
        table[name] = dict(accuracy=acc, params=sum(p.numel() for p in model.parameters()),
                           train_time_s=seconds, history=curve)
    return table
