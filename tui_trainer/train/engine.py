"""Training: the core both front ends use. Knows no UI: it reports through plain events to one
callback and stops when a `threading.Event` is set. Safe to run in a non-main thread.

The report's protocol: SGD(momentum, weight decay) + cross-entropy + StepLR stepped per epoch; the
loss is recorded every step; after each epoch the model is evaluated (eval mode) on the whole train
and the whole val split; the best-val weights are kept and finally evaluated on test.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.data.batches import (
    TensorSplit,
    batch_order,
    build_tensor_splits,
    iterate_batches,
    normalization,
    seed_everything,
)
from tui_trainer.data.decode import decode_all
from tui_trainer.data.layout import DataError, Splits, find_layout, make_splits
from tui_trainer.errors import Stopped
from tui_trainer.events import Epoch, EventCallback, Log, RunEnded, RunStarted, Step
from tui_trainer.files import save_checkpoint_atomic
from tui_trainer.runs.results import save_test_results
from tui_trainer.train import fast_paths as fastpath
from tui_trainer.train import frozen_features as features
from tui_trainer.train import topology as distributed
from tui_trainer.train.hardware import autocast_dtype, resolve_precision
from tui_trainer.train.models import apply_freeze, build_model, set_train_mode


class Diverged(Exception):
    """The loss went non-finite or stayed far above its starting value."""


@dataclass
class Prepared:
    """Everything checked and loaded before a run folder exists (bad input fails here)."""

    config: RunConfig
    data_dir: Path
    splits: Splits
    tensors: dict[str, TensorSplit]
    skipped: list[str]
    device: torch.device
    precision: str
    model: nn.Module
    fast_paths: list[str] = field(default_factory=list)  # fastpath.choose: recorded in config.json


def prepare(
    config: RunConfig,
    data_dir: Path,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
) -> Prepared:
    """Resolve hardware, load weights, find and decode the data. Raises UserError on bad input,
    and `Stopped` when `stop` is set during the decode (which can take minutes the first time)."""
    say = on_event or (lambda e: None)
    device = distributed.setup(config)  # under torchrun: this rank's GPU, process group joined
    precision = resolve_precision(config.precision, device)
    layout = find_layout(data_dir)
    splits = make_splits(layout, config)
    seed_everything(config.seed)  # the random init follows the seed
    model = build_model(config.model, len(splits.classes), config.weights)
    items = splits.all_items()
    paths = [splits.images_dir / rel for rel, _ in items]
    say(Log("", f"decoding {len(paths)} images at {config.image_size}px"))
    decoded = decode_all(
        paths,
        config.resize,
        config.image_size,
        threads=config.threads,
        on_progress=lambda done, total: say(Log("", f"decoded {done}/{total} images")),
        stop=stop,
    )
    tensors, skipped = build_tensor_splits(splits, decoded)
    for name, split in tensors.items():
        if len(split) == 0:  # before the warnings: the error alone says it, in one line
            raise DataError(
                f"no readable images left in the {name} split of {data_dir} ({len(skipped)} "
                "unreadable files): check the image files"
            )
    for rel in skipped:
        say(Log("", f"skipped unreadable image {splits.images_dir / rel}", "warning"))
    paths = fastpath.choose(config, device, tensors)
    return Prepared(config, data_dir, splits, tensors, skipped, device, precision, model, paths)


@dataclass
class TrainState:
    """What survives an epoch boundary; all of it goes into last.pt."""

    epoch: int = 0  # last completed epoch
    global_step: int = 0
    best_epoch: int = 0
    best_val_acc: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)
    first_loss: float | None = None
    high_loss_steps: int = 0


def _to_input(images: torch.Tensor, ctx: dict[str, Any], augment=None) -> torch.Tensor:
    """uint8 images -> (augmented on the device) normalised float NHWC. Cached frozen features
    (float already) are the head's input as they are."""
    x = images.to(ctx["device"], non_blocking=True)
    if images.dtype != torch.uint8:
        return x
    if augment is not None:
        x = augment(x)
    # NHWC while still uint8, then one float tensor: (x / 255 - mean) / std in two passes
    x = x.contiguous(memory_format=torch.channels_last).float()
    return x.mul_(ctx["scale"]).sub_(ctx["shift"])


def _autocast(ctx: dict[str, Any]):
    return torch.autocast(ctx["device"].type, dtype=ctx["dtype"], enabled=ctx["dtype"] is not None)


def _seed_epoch(seed: int, epoch: int, rank: int = 0) -> None:
    """Dropout and augmentation draws follow (seed, epoch): a resumed epoch replays exactly.
    Each distributed rank draws its own (its images differ), still replayable."""
    s = seed * 1_000_003 + epoch + rank * 1_000_000_007
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s % 2**32)


def train_one_epoch(model, criterion, optimizer, scaler, split, cfg, ctx, state, epoch, emit, stop):
    """One pass over the shuffled train split; a Step event per batch. Returns mean step loss."""
    set_train_mode(distributed.unwrap(model), cfg.model, cfg.freeze)
    order = distributed.shard_train(batch_order(len(split), cfg.seed, epoch, shuffle=True))
    batch = distributed.local_batch(cfg.batch_size)  # batch_size is the global batch
    steps = math.ceil(len(order) / batch)
    augment = ctx["augment"]
    total = 0.0
    for step, (images, labels) in enumerate(
        iterate_batches(split, batch, order, pin=ctx["pin"]), 1
    ):
        if distributed.should_stop(stop):
            raise Stopped
        x = _to_input(images, ctx, augment)
        y = labels.to(ctx["device"], non_blocking=True)
        with _autocast(ctx):
            logits = model(x)
        loss = criterion(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        value = distributed.step_loss(loss, len(labels), stop)  # the global batch's loss
        state.global_step += 1
        _check_divergence(value, state, cfg)
        total += value
        emit(
            Step("", epoch, step, steps, state.global_step, value, optimizer.param_groups[0]["lr"])
        )
    return total / max(steps, 1)


def _check_divergence(loss: float, state: TrainState, cfg: RunConfig) -> None:
    if not math.isfinite(loss):
        raise Diverged(f"loss became {loss} at step {state.global_step}: lower the lr")
    if state.first_loss is None:
        state.first_loss = loss
        return
    if loss > cfg.diverge_factor * state.first_loss:
        state.high_loss_steps += 1
        if state.high_loss_steps >= cfg.diverge_patience:
            raise Diverged(
                f"loss stayed above {cfg.diverge_factor:g}x its first value "
                f"({state.first_loss:.3f}) for {state.high_loss_steps} steps: lower the lr"
            )
    else:
        state.high_loss_steps = 0


def _eval_logits(model, split, cfg, ctx, stop=None):
    """(fp32 logits, labels) per batch, in eval mode, over this rank's chunk of the split in its
    stored order (all of it in a single process)."""
    model.eval()
    # Distributed ranks hold unequal chunks of the split: they stop only at a train step, together.
    index = distributed.shard_eval(len(split))
    batch = distributed.local_batch(cfg.batch_size)
    for images, labels in iterate_batches(split, batch, index, pin=ctx["pin"]):
        if stop is not None and stop.is_set() and not distributed.active():
            raise Stopped
        x = _to_input(images, ctx)
        y = labels.to(ctx["device"], non_blocking=True)
        with _autocast(ctx):
            logits = model(x)
        yield logits.float(), y


def evaluate(model, split, cfg, ctx, stop=None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole split, in eval mode."""
    loss, acc, _ = _evaluate(model, split, cfg, ctx, stop, keep_predictions=False)
    return loss, acc


def evaluate_with_predictions(model, split, cfg, ctx) -> tuple[float, float, torch.Tensor]:
    """`evaluate`, plus the predicted class of every image of the split in order (the per-class
    results), from the same single pass."""
    return _evaluate(model, split, cfg, ctx, None, keep_predictions=True)


@torch.no_grad()
def _evaluate(model, split, cfg, ctx, stop, keep_predictions: bool):
    criterion = nn.CrossEntropyLoss(reduction="sum")
    # sums stay on the device: one GPU sync per split, not one per batch
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx["device"])
    correct = torch.zeros((), dtype=torch.int64, device=ctx["device"])
    preds = []
    for logits, y in _eval_logits(model, split, cfg, ctx, stop):
        loss_sum += criterion(logits, y)
        pred = logits.argmax(1)
        correct += (pred == y).sum()
        if keep_predictions:
            preds.append(pred)
    loss_sum, correct = distributed.sum_eval(loss_sum, correct)
    n = max(len(split), 1)
    predictions = None
    if keep_predictions:  # this rank's chunk, then the whole split's from every rank's chunk
        mine = torch.cat(preds) if preds else correct.new_zeros(0)  # a rank's chunk may be empty
        predictions = distributed.gather_eval(mine, len(split)).cpu()
    return loss_sum.item() / n, correct.item() / n, predictions


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _summary(state: TrainState, prep: Prepared, seconds: float) -> dict[str, Any]:
    best = next((h for h in state.history if h["epoch"] == state.best_epoch), None)
    last = state.history[-1] if state.history else None
    return {
        "best_epoch": state.best_epoch or None,
        "max_val_acc": best["val_acc"] if best else None,
        "final_train_loss": last["train_loss"] if last else None,
        "accuracy_gap": best["train_acc"] - best["val_acc"] if best else None,
        "loss_gap": best["val_loss"] - best["train_loss"] if best else None,
        "epochs_done": state.epoch,
        "seconds": round(seconds, 3),
        "skipped_images": len(prep.skipped),
        "num_train": len(prep.tensors["train"]),
        "num_val": len(prep.tensors["val"]),
        "num_test": len(prep.tensors["test"]),
        "test_acc": None,
        "test_loss": None,
    }


def make_context(prep: Prepared) -> dict[str, Any]:
    """What every batch needs: device, autocast dtype, normalisation, augmenter, pinning."""
    from tui_trainer.data.augment import make_augmenter

    cfg, device = prep.config, prep.device
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in normalization(cfg))
    return {
        "device": device,
        "dtype": autocast_dtype(prep.precision),
        # _to_input's (x / 255 - mean) / std as x * scale - shift, computed once, not per batch
        "scale": 1.0 / (255.0 * std),
        "shift": mean / std,
        "augment": make_augmenter(cfg.augment, cfg.aug_p),
        "pin": "pinned_memory" in prep.fast_paths,
    }


def train(
    prep: Prepared,
    on_event: EventCallback,
    stop: threading.Event,
    run_dir: Path | None = None,
    run_id: str = "",
    resume: dict[str, Any] | None = None,
) -> RunEnded:
    """Train `prep.config`; checkpoints go to `run_dir` when given. Returns the RunEnded event."""
    cfg, device = prep.config, prep.device
    torch.set_num_threads(distributed.threads_per_rank(cfg.threads))  # set in the training thread
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    def emit(event) -> None:
        on_event(dataclasses.replace(event, run_id=run_id))

    seed_everything(cfg.seed)
    model = prep.model.to(device, memory_format=torch.channels_last)
    params = apply_freeze(model, cfg.model, cfg.freeze)
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    scaler = torch.amp.GradScaler(device.type, enabled=prep.precision == "fp16")
    criterion = nn.CrossEntropyLoss()
    ctx = make_context(prep)
    state = TrainState()
    best_weights: dict[str, torch.Tensor] | None = None
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        state = TrainState(**resume["state"])
        best_weights = resume.get("best_model")
        if resume.get("scaler"):  # fp16 only: an enabled scaler's state is never empty
            scaler.load_state_dict(resume["scaler"])
    data = fastpath.place(prep.tensors, device, prep.fast_paths)
    step_model = model  # what the epochs run: the model, or its head on cached frozen features
    emit(
        RunStarted(
            run_id,
            cfg.to_dict(),
            str(device),
            prep.precision,
            len(prep.splits.classes),
            len(data["train"]),
            len(data["val"]),
            len(data["test"]),
            math.ceil(len(data["train"]) / cfg.batch_size),
            cfg.epochs,
            state.epoch + 1,
        )
    )
    # A resumed run's time counts the epochs it keeps from before (saved in last.pt).
    started = time.monotonic() - (resume or {}).get("seconds", 0.0)
    status, message = "completed", ""
    try:
        if "frozen_features" in prep.fast_paths:
            step_model, data = _frozen_features(model, cfg, data, ctx, emit, stop)
        net = distributed.wrap(step_model)  # DDP under torchrun; `model` stays the plain module
        for epoch in range(state.epoch + 1, cfg.epochs + 1):
            t0 = time.monotonic()
            _seed_epoch(cfg.seed, epoch, distributed.rank())
            lr = optimizer.param_groups[0]["lr"]
            train_one_epoch(
                net,
                criterion,
                optimizer,
                scaler,
                data["train"],
                cfg,
                ctx,
                state,
                epoch,
                emit,
                stop,
            )
            scheduler.step()
            distributed.sync_buffers(model)
            train_loss, train_acc = evaluate(step_model, data["train"], cfg, ctx, stop)
            val_loss, val_acc = evaluate(step_model, data["val"], cfg, ctx, stop)
            is_best = val_acc > state.best_val_acc
            if is_best:
                state.best_epoch, state.best_val_acc = epoch, val_acc
                best_weights = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
            state.epoch = epoch
            state.history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "train_acc": train_acc,
                    "val_loss": val_loss,
                    "val_acc": val_acc,
                    # with these the epoch's metrics row can be rebuilt if a kill loses it
                    "lr": lr,
                    "seconds": time.monotonic() - t0,
                }
            )
            if run_dir is not None:
                # last.pt first: die before best.pt is written and last.pt's weights are the best.
                save_checkpoint_atomic(
                    run_dir / "last.pt",
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                        "epoch": epoch,
                        "state": state.__dict__,
                        "rng": _rng_state(),
                        "config": cfg.to_dict(),
                        "seconds": time.monotonic() - started,
                    },
                )
                if is_best:
                    save_checkpoint_atomic(
                        run_dir / "best.pt",
                        {
                            "model": best_weights,
                            "epoch": epoch,
                            "val_acc": val_acc,
                        },
                    )
            emit(
                Epoch(
                    "",
                    epoch,
                    cfg.epochs,
                    train_loss,
                    train_acc,
                    val_loss,
                    val_acc,
                    lr,
                    time.monotonic() - t0,
                    is_best,
                )
            )
    except Stopped:
        status, message = "interrupted", f"stopped during epoch {state.epoch + 1}"
    except Diverged as exc:
        status, message = "diverged", str(exc)
    except torch.cuda.OutOfMemoryError:
        status = "failed"
        message = (
            f"out of GPU memory at batch_size={cfg.batch_size}: try --set batch_size="
            f"{max(cfg.batch_size // 2, 1)}"
        )
    summary = _summary(state, prep, time.monotonic() - started)
    if status == "completed" and best_weights is not None:
        model.load_state_dict(best_weights)
        test = data["test"]
        # one pass gives both the summary's figures and the per-class results
        summary["test_loss"], summary["test_acc"], preds = evaluate_with_predictions(
            step_model, test, cfg, ctx
        )
        if run_dir is not None:  # per-class accuracy and confusions: perclass.py
            save_test_results(run_dir, prep.splits, test, preds)
    ended = RunEnded(run_id, status, summary, message)
    emit(ended)
    return ended


def _frozen_features(model, cfg, data, ctx, emit, stop):
    def check_stop() -> None:
        if distributed.should_stop(stop):  # all ranks agree, so none stops alone mid-cache
            raise Stopped

    return features.cache_frozen_features(
        model,
        cfg,
        data,
        lambda images: _to_input(images, ctx),
        lambda: _autocast(ctx),
        lambda message: emit(Log("", message)),
        check_stop,
    )
