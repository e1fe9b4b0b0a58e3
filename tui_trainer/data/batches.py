"""The decoded images as train/val/test tensors, their normalisation and batches in epoch order."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from tui_trainer.config import RunConfig
from tui_trainer.data.decode import DecodedImages
from tui_trainer.data.layout import Splits

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PLAIN_MEAN = (0.5, 0.5, 0.5)  # random-init models: the course notebook's normalisation
PLAIN_STD = (0.5, 0.5, 0.5)


@dataclass
class TensorSplit:
    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def build_tensor_splits(
    splits: Splits, decoded: DecodedImages
) -> tuple[dict[str, TensorSplit], list[str]]:
    """Cut the decoded tensor into train/val/test, dropping unreadable files (returned by name)."""
    bad = set(decoded.bad)
    out: dict[str, TensorSplit] = {}
    skipped: list[str] = []
    offset = 0
    for name, items in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        keep = [i for i in range(len(items)) if offset + i not in bad]
        skipped += [items[i][0] for i in range(len(items)) if offset + i in bad]
        if len(keep) == len(items):  # every file readable: a view, not a second copy in memory
            images = decoded.images[offset : offset + len(items)]
        else:
            index = torch.tensor([offset + i for i in keep], dtype=torch.long)
            images = decoded.images.index_select(0, index)
        out[name] = TensorSplit(
            images=images,
            labels=torch.tensor([items[i][1] for i in keep], dtype=torch.long),
            paths=[items[i][0] for i in keep],
        )
        offset += len(items)
    return out, skipped


def normalization(config: RunConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """ImageNet statistics for pretrained weights; plain 0.5/0.5 for random init."""
    if config.weights == "none":
        return PLAIN_MEAN, PLAIN_STD
    return IMAGENET_MEAN, IMAGENET_STD


def batch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """The data order of one epoch follows (seed, epoch) alone, so a resumed run sees the same."""
    if not shuffle:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen)


def train_order(n: int, config: RunConfig, epoch: int) -> torch.Tensor:
    """The training split's order of one epoch: `batch_order`, less its last partial batch when
    `last_batch=drop` (DataLoader's drop_last=True). A split smaller than one batch keeps its
    images: dropping them would train on nothing."""
    return batch_order(n, config.seed, epoch, shuffle=True)[: train_images(n, config)]


def train_images(n: int, config: RunConfig) -> int:
    """Images one training epoch over `n` trains (see `train_order`)."""
    return min(train_steps(n, config) * config.batch_size, n)


def train_steps(n: int, config: RunConfig) -> int:
    """Steps of one training epoch over `n` images (see `train_order`)."""
    full = n // config.batch_size
    if config.last_batch == "drop" and full > 0:
        return full
    return math.ceil(n / config.batch_size)


def iterate_batches(
    split: TensorSplit,
    batch_size: int,
    order: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    pin: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """uint8 image batches (augmented per image when asked) and labels, in the given order.

    The split may live on a GPU; `pin` gathers each batch of a split held on the CPU into pinned
    memory (for a CUDA copy that does not wait). A split already on a device (frozen features
    cached on the GPU) is read where it is: pinned host memory cannot receive a device gather."""
    pin = pin and split.images.device.type == "cpu"
    order = order.to(split.images.device)  # once: not a blocking host-to-GPU copy per batch
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if pin:
            shape = (len(idx), *split.images.shape[1:])
            images = torch.empty(shape, dtype=split.images.dtype, pin_memory=True)
            torch.index_select(split.images, 0, idx, out=images)
        else:
            images = gather_rows(split.images, idx)
        if augment is not None:
            images = augment(images)
        yield images, split.labels.index_select(0, idx)


def gather_rows(images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """`images.index_select(0, idx)`. uint8 rows on the CPU are gathered as 8-byte words:
    index_select moves a uint8 tensor a byte at a time, several times slower than the same
    bytes as int64 (a fifth of an epoch's time at 224 px)."""
    row = images[0].numel() if len(images) else 0
    if (
        images.dtype != torch.uint8
        or images.device.type != "cpu"
        or not images.is_contiguous()
        or row == 0
        or row % 8
        or images.storage_offset() % 8
    ):
        return images.index_select(0, idx)
    words = images.view(len(images), row).view(torch.int64).index_select(0, idx)
    return words.view(torch.uint8).view(len(idx), *images.shape[1:])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
