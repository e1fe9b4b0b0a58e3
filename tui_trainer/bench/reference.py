"""The plain training loop the way the course notebook writes it: the bench's yardstick.

An ImageFolder-like dataset of PIL images decoded per item, Resize + CenterCrop + ToTensor +
Normalize, a DataLoader with worker processes, NCHW, fp32, and the report's protocol per epoch
(train, then evaluate the whole train and val splits). Nothing else uses it.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tui_trainer.train.hardware import sync

# Workers start from a fork server with these already imported: the notebook's fork() start cost,
# without forking a process that already runs threads.
PRELOAD = ["torch", "torchvision", "PIL.Image", "tui_trainer.bench.reference"]


def reference_transform(resize: int, size: int, mean: Sequence[float], std: Sequence[float]):
    from torchvision import transforms as T

    return T.Compose([T.Resize(resize), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])


class ImageListDataset(Dataset):
    """(path, label) pairs, each image decoded with PIL when it is asked for."""

    def __init__(self, paths: list[Path], labels: list[int], transform) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), self.labels[i]


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, workers: int) -> DataLoader:
    context = None
    if workers > 0:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        multiprocessing_context=context,
    )


def train_epoch(model, loader, optimizer, criterion, device) -> None:
    model.train()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def evaluate(model, loader, criterion, device) -> tuple[float, float]:
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        outputs = model(images)
        loss_sum += criterion(outputs, labels).item() * len(labels)
        correct += (outputs.argmax(1) == labels).sum().item()
        n += len(labels)
    return loss_sum / max(n, 1), correct / max(n, 1)


def timed_epoch(
    model: nn.Module,
    loaders: dict[str, DataLoader],
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> dict[str, float]:
    """Seconds of one protocol epoch: train, evaluate train, evaluate val (and their sum)."""
    criterion = nn.CrossEntropyLoss()
    times = {}
    t0 = time.perf_counter()
    train_epoch(model, loaders["train"], optimizer, criterion, device)
    sync(device)
    times["train"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    evaluate(model, loaders["train_eval"], criterion, device)
    evaluate(model, loaders["val"], criterion, device)
    sync(device)
    times["evaluate"] = time.perf_counter() - t1
    times["epoch"] = time.perf_counter() - t0
    return times
