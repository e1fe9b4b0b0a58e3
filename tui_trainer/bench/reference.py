"""The plain training loop the way the course notebook writes it: the bench's yardstick, and a
full plain run (`plain_run`) to measure the report's rows with, next to the engine.

PIL images decoded per item, Resize + CenterCrop + ToTensor + Normalize, a DataLoader (its own
seeded shuffle; `drop_last` as `last_batch` says), NCHW, fp32 or bf16 autocast, SGD(momentum,
weight decay) + cross-entropy + StepLR per epoch; after each epoch the whole train and val splits
evaluated in eval mode, the best-val weights (strictly better) kept and finally tested.

The engine (train/engine.py) runs the same algorithm; tests/engine/test_plain_loop_equivalence.py
checks it step by step. What differs by design, each decided:
- preprocessing: the engine decodes once with the same PIL Resize + CenterCrop into uint8 and
  normalises as x * 1/(255 std) - mean/std; ToTensor + Normalize round differently by ~1e-7 only.
- memory format: the engine runs channels_last (faster on oneDNN and cuDNN); same arithmetic.
- the last partial batch (76 of 2,892 images at batch 256): both loops follow `last_batch`; the
  `scratch` preset drops it, as the notebook's `drop_last=True`, so the scratch row is the
  notebook's algorithm; the default keeps it, so other presets' runs and resumes are unchanged.
- data order: the engine's follows (seed, epoch) alone (`batch_order`), so a resumed epoch replays
  it; this loop's follows one generator seeded once. Both are uniform shuffles.
- randomness: the engine reseeds torch, random and numpy at each epoch's start from (seed, epoch)
  (dropout draws replay on resume); this loop seeds once, before building the model. The initial
  weights are the same for the same seed: both seed, then build the model.
- the split, init, optimizer, loss (batch mean), scheduler, eval mode, best-val and test: the same.
"""

from __future__ import annotations

import copy
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from tui_trainer.config import RunConfig, eval_batch
from tui_trainer.data.batches import normalization, seed_everything
from tui_trainer.data.layout import Splits, find_layout, make_splits
from tui_trainer.errors import UserError
from tui_trainer.train.hardware import (
    autocast_dtype,
    check_precision,
    resolve_device,
    sync,
)
from tui_trainer.train.host import cpu_threads
from tui_trainer.train.models import apply_freeze, build_model, set_train_mode
from tui_trainer.train.precision_probe import decide

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


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    drop_last: bool = False,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """`generator`: the shuffle's (and the workers' base seed's); without one the DataLoader
    draws from torch's global generator, which dropout draws from too."""
    context = None
    if workers > 0:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        multiprocessing_context=context,
        drop_last=drop_last,
        generator=generator,
    )


def _to_device(images, labels, device, memory_format):
    return images.to(device).contiguous(memory_format=memory_format), labels.to(device)


def train_epoch(
    model,
    loader,
    optimizer,
    criterion,
    device,
    dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> list[float]:
    """One pass over `loader`, under autocast to `dtype` when given; every step's loss."""
    model.train()
    losses = []
    for batch in loader:
        images, labels = _to_device(*batch, device, memory_format)
        optimizer.zero_grad()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def evaluate(
    model,
    loader,
    criterion,
    device,
    dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[float, float]:
    """Mean loss and accuracy over `loader`, in eval mode."""
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for batch in loader:
        images, labels = _to_device(*batch, device, memory_format)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            outputs = model(images)
        loss_sum += criterion(outputs.float(), labels).item() * len(labels)
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


# --- the full plain run ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlainEpoch:
    epoch: int
    train_loss: float  # evaluated on the whole train split, in eval mode (as the engine's)
    train_acc: float
    val_loss: float
    val_acc: float
    step_losses: tuple[float, ...]  # every training step's loss, in order
    lr: float  # the LR of this epoch (before the scheduler's step)
    seconds: float

    @property
    def step_loss(self) -> float:
        """The mean training-step loss of the epoch."""
        return sum(self.step_losses) / max(len(self.step_losses), 1)


@dataclass(frozen=True)
class PlainResult:
    seed: int
    precision: str
    epochs: tuple[PlainEpoch, ...]
    best_epoch: int
    max_val_acc: float
    test_loss: float
    test_acc: float  # with the best-val weights
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_plain_config(cfg: RunConfig) -> None:
    """What the plain loop does not implement is refused before any work, in one line."""
    if cfg.augment != "none":
        raise UserError(
            f"augment={cfg.augment}: the plain loop has no augmentation; use --set augment=none"
        )
    if cfg.precision == "fp16":
        raise UserError("precision=fp16: the plain loop runs fp32 or bf16; use one of those")


class EpochOrder(Sampler[int]):
    """A given order per epoch, `order(epoch)`: the engine's batch order, for a test."""

    def __init__(self, order: Callable[[int], torch.Tensor], n: int) -> None:
        self.order, self.n, self.epoch = order, n, 1

    def __iter__(self):
        return iter(self.order(self.epoch).tolist())

    def __len__(self) -> int:
        return self.n


@dataclass(frozen=True)
class Alignment:
    """What a test aligns with the engine's to compare the two loops step by step: the training
    order of each epoch, a hook at each epoch's start (the engine's reseed), the memory format."""

    train_order: Callable[[int], torch.Tensor]  # epoch -> the order of the whole train split
    before_epoch: Callable[[int], None]
    memory_format: torch.memory_format = torch.channels_last


@dataclass
class _Plain:
    """One plain run's pieces: the model, its optimisation and the loaders."""

    cfg: RunConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train: DataLoader
    loaders: dict[str, DataLoader]  # the whole train, val and test splits, in stored order
    device: torch.device
    precision: str  # as the engine would train: precision=auto asks the same probe
    memory_format: torch.memory_format
    criterion: nn.Module = field(default_factory=nn.CrossEntropyLoss)


@dataclass(frozen=True)
class PlainTrained:
    result: PlainResult
    model: nn.Module  # with the best-val weights


def initial_model(cfg: RunConfig, num_classes: int) -> nn.Module:
    """Seeded, then built: the engine's initial weights for the same seed (see `prepare`)."""
    seed_everything(cfg.seed)
    return build_model(cfg.model, num_classes, cfg.weights)


def _split_loader(
    splits: Splits, items, cfg: RunConfig, workers: int, batch: int, **kwargs
) -> DataLoader:
    mean, std = normalization(cfg)
    transform = reference_transform(cfg.resize, cfg.image_size, mean, std)
    paths = [splits.images_dir / rel for rel, _ in items]
    dataset = ImageListDataset(paths, [label for _, label in items], transform)
    return make_loader(dataset, batch, workers=workers, **kwargs)


def _build(cfg: RunConfig, splits: Splits, workers: int, align: Alignment | None) -> _Plain:
    device = resolve_device(cfg.device)
    memory_format = align.memory_format if align else torch.contiguous_format
    model = initial_model(cfg, len(splits.classes))
    model = model.to(device, memory_format=memory_format)
    # drop_last follows last_batch: the scratch preset drops, as the notebook's loader did
    drop_last = cfg.last_batch == "drop" and len(splits.train) >= cfg.batch_size  # as train_steps
    if align is None:  # the shuffle draws from its own generator, seeded once
        order = torch.Generator().manual_seed(cfg.seed)
        kwargs: dict[str, Any] = {"shuffle": True, "generator": order}
    else:  # a generator all the same: a DataLoader without one draws from torch's global one
        sampler = EpochOrder(align.train_order, len(splits.train))
        kwargs = {"shuffle": False, "sampler": sampler, "generator": torch.Generator()}
    train = _split_loader(
        splits, splits.train, cfg, workers, cfg.batch_size, drop_last=drop_last, **kwargs
    )
    loaders = {  # evaluated at the engine's eval batch
        name: _split_loader(splits, items, cfg, workers, eval_batch(cfg), shuffle=False)
        for name, items in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }
    optimizer = torch.optim.SGD(
        apply_freeze(model, cfg.model, cfg.freeze),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    precision = check_precision(decide(cfg, device, cpu_threads(cfg.threads)).precision, device)
    precision = "fp32" if precision == "fp16" else precision  # no grad scaler here: auto's fp16
    return _Plain(
        cfg, model, optimizer, scheduler, train, loaders, device, precision, memory_format
    )


def _evaluate(plain: _Plain, name: str) -> tuple[float, float]:
    loader, fmt = plain.loaders[name], plain.memory_format
    return evaluate(
        plain.model, loader, plain.criterion, plain.device, autocast_dtype(plain.precision), fmt
    )


def _epoch(plain: _Plain, epoch: int) -> PlainEpoch:
    """Train one epoch, step the scheduler, evaluate the whole train and val splits."""
    started, lr = time.monotonic(), plain.optimizer.param_groups[0]["lr"]
    if isinstance(plain.train.sampler, EpochOrder):
        plain.train.sampler.epoch = epoch
    set_train_mode(plain.model, plain.cfg.model, plain.cfg.freeze)
    losses = train_epoch(
        plain.model,
        plain.train,
        plain.optimizer,
        plain.criterion,
        plain.device,
        autocast_dtype(plain.precision),
        plain.memory_format,
    )
    plain.scheduler.step()
    train_loss, train_acc = _evaluate(plain, "train")
    val_loss, val_acc = _evaluate(plain, "val")
    seconds = time.monotonic() - started
    return PlainEpoch(epoch, train_loss, train_acc, val_loss, val_acc, tuple(losses), lr, seconds)


def plain_train(
    cfg: RunConfig,
    data_dir: Path,
    workers: int = 0,
    say: Callable[[str], None] = print,
    align: Alignment | None = None,
) -> PlainTrained:
    """The report's protocol with the plain loop: `cfg.epochs` epochs, the best-val weights, test.
    The split and the initial weights are the engine's for the same seed."""
    check_plain_config(cfg)
    t0 = time.monotonic()
    torch.set_num_threads(cpu_threads(cfg.threads))
    splits = make_splits(find_layout(data_dir), cfg)
    plain = _build(cfg, splits, workers, align)
    rows: list[PlainEpoch] = []
    best_epoch, best_val, best_weights = 0, -1.0, {}
    for epoch in range(1, cfg.epochs + 1):
        if align is not None:
            align.before_epoch(epoch)
        row = _epoch(plain, epoch)
        rows.append(row)
        if row.val_acc > best_val:  # strictly better, as the engine
            best_epoch, best_val = epoch, row.val_acc
            best_weights = copy.deepcopy(plain.model.state_dict())
        say(_epoch_line(row, cfg.epochs))
    plain.model.load_state_dict(best_weights)
    test_loss, test_acc = _evaluate(plain, "test")
    result = PlainResult(
        cfg.seed,
        plain.precision,
        tuple(rows),
        best_epoch,
        best_val,
        test_loss,
        test_acc,
        time.monotonic() - t0,
    )
    return PlainTrained(result, plain.model)


def plain_run(
    cfg: RunConfig, data_dir: Path, workers: int = 0, say: Callable[[str], None] = print
) -> PlainResult:
    """`plain_train`'s result, notebook-style: NCHW, its own shuffle, seeded once."""
    return plain_train(cfg, data_dir, workers, say).result


def _epoch_line(row: PlainEpoch, epochs: int) -> str:
    return (
        f"epoch {row.epoch}/{epochs}  step loss {row.step_loss:.4f}  train {row.train_acc:.4f}  "
        f"val {row.val_acc:.4f} (loss {row.val_loss:.4f})  lr {row.lr:g}  {row.seconds:.1f} s"
    )
