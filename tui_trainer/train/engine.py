"""Training: the core both front ends use. Knows no UI: it reports through plain events to one
callback and stops when a `threading.Event` is set. Safe to run in a non-main thread.

The report's protocol: SGD(momentum, weight decay) + cross-entropy + StepLR stepped per epoch; the
loss is recorded every step; after each epoch the model is evaluated (eval mode) on the whole train
and the whole val split; the best-val weights are kept and finally evaluated on test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.data.batches import (
    TensorSplit,
    iterate_batches,
    seed_everything,
    train_order,
    train_steps,
)
from tui_trainer.data.layout import Splits
from tui_trainer.errors import Stopped, StorageError
from tui_trainer.events import Epoch, EventCallback, Log, RunEnded, RunStarted, RunStatus, Step
from tui_trainer.train import fast_paths, frozen_features, probe_check
from tui_trainer.train.checkpoint import Checkpoint, TrainState, save_best
from tui_trainer.train.checkpoint_writer import BestWeights, CheckpointWriter, take_snapshot
from tui_trainer.train.context import BatchContext, make_context
from tui_trainer.train.evaluation import evaluate, evaluate_with_predictions
from tui_trainer.train.models import apply_freeze, set_train_mode
from tui_trainer.train.optimizer import make_sgd
from tui_trainer.train.preparation import Prepared, prepare
from tui_trainer.train.run_summary import run_summary

__all__ = [  # the engine's API, some of it defined in the modules beside it
    "BatchContext",
    "Checkpoint",
    "EpochResult",
    "Judge",
    "Prepared",
    "TrainState",
    "evaluate",
    "evaluate_with_predictions",
    "make_context",
    "prepare",
    "train",
    "train_one_epoch",
]

# The test split's predictions at the end of a completed run: (splits, test split, predicted labels)
TestCallback = Callable[[Splits, TensorSplit, torch.Tensor], None]
# Asked after each epoch (its checkpoints submitted): a reason ends the run `pruned` there, None
# trains on. A search's pruner speaks through it; the engine knows no search library.
Judge = Callable[[Epoch], str | None]


class Diverged(Exception):
    """The loss went non-finite or stayed far above its starting value."""


@dataclass
class Loop:
    """What the epochs work with: built by `build_loop`, restored from last.pt by `restore`."""

    model: nn.Module  # the plain module: checkpoints, best weights, the test pass
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    ctx: BatchContext
    data: dict[str, TensorSplit]
    step_model: nn.Module  # what the epochs evaluate: the model, or its head on cached features
    net: nn.Module | None = None  # what the epochs train: step_model, under torchrun in DDP
    best_weights: dict[str, torch.Tensor] | None = None  # on the CPU
    best_unsaved: bool = False  # best.pt lags: resumed from a last.pt whose epoch was the best
    run_id: str = ""  # what every event of the run carries
    judge: Judge | None = None  # asked after each epoch (a search's pruner)


@dataclass(frozen=True)
class EpochResult:
    """One finished epoch: its metrics, as history, the Epoch event and the checkpoints see it."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float  # the LR used during this epoch (before the scheduler's step)
    seconds: float  # training and evaluation
    is_best: bool
    started: float  # time.monotonic() at the epoch's start

    def history_row(self) -> dict[str, float]:
        """last.pt's record: with it the epoch's metrics row can be rebuilt if a kill loses it."""
        keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
        return {k: getattr(self, k) for k in keys}

    def event(self, run_id: str, epochs: int) -> Epoch:
        """The Epoch event: seconds of training and evaluation (before the checkpoints)."""
        keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "is_best")
        seconds = time.monotonic() - self.started
        metrics = {k: getattr(self, k) for k in keys}
        return Epoch(run_id=run_id, epochs=epochs, seconds=seconds, **metrics)


def train(
    prep: Prepared,
    on_event: EventCallback,
    stop: threading.Event,
    run_dir: Path | None = None,
    run_id: str = "",
    resume: Checkpoint | None = None,
    on_test: TestCallback | None = None,
    judge: Judge | None = None,
) -> RunEnded:
    """Train `prep.config`; checkpoints go to `run_dir` when given, the test predictions of a
    completed run to `on_test`; `judge` may end it `pruned` after an epoch. Returns the RunEnded
    event. Every event carries `run_id`."""
    loop = build_loop(prep, run_id)
    loop.judge = judge
    state = restore(loop, resume)
    loop.data = fast_paths.place(prep.tensors, prep.device, prep.fast_paths)
    on_event(_started_event(prep, loop, state.epoch + 1))
    # A resumed run's time counts the epochs it keeps from before (saved in last.pt).
    started = time.monotonic() - (resume.seconds if resume is not None else 0.0)
    status, message = run_epochs(prep, loop, state, on_event, stop, run_dir, started)
    ended = finish(prep, loop, state, status, message, time.monotonic() - started, on_test)
    on_event(ended)
    return ended


def build_loop(prep: Prepared, run_id: str = "") -> Loop:
    """The model on its device, SGD + StepLR + the fp16 grad scaler, the batch context."""
    cfg, device = prep.config, prep.device
    # set in the training thread
    torch.set_num_threads(prep.topology.threads_per_rank(cfg.threads))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seed_everything(cfg.seed)
    model = prep.model.to(device, memory_format=torch.channels_last)
    params = apply_freeze(model, cfg.model, cfg.freeze)
    optimizer = make_sgd(params, cfg)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    scaler = torch.amp.GradScaler(device.type, enabled=prep.precision == "fp16")
    criterion = nn.CrossEntropyLoss()
    ctx = make_context(prep)
    return Loop(
        model, optimizer, scheduler, scaler, criterion, ctx, prep.tensors, model, run_id=run_id
    )


def restore(loop: Loop, resume: Checkpoint | None) -> TrainState:
    """Load last.pt's states into the loop; the state to continue from (a fresh one if None)."""
    if resume is None:
        return TrainState()
    loop.model.load_state_dict(resume.model)
    loop.optimizer.load_state_dict(resume.optimizer)
    loop.scheduler.load_state_dict(resume.scheduler)
    loop.best_weights = resume.best_model
    # last.pt's own weights: best.pt was lost (a write that failed, a kill): written again next
    loop.best_unsaved = resume.best_model is resume.model
    if resume.scaler:  # fp16 only: an enabled scaler's state is never empty
        loop.scaler.load_state_dict(resume.scaler)
    return dataclasses.replace(resume.state, history=list(resume.state.history))


def _started_event(prep: Prepared, loop: Loop, start_epoch: int) -> RunStarted:
    cfg, data = prep.config, loop.data
    return RunStarted(
        run_id=loop.run_id,
        config=cfg.to_dict(),
        device=str(prep.device),
        precision=prep.precision,
        num_classes=len(prep.splits.classes),
        num_train=len(data["train"]),
        num_val=len(data["val"]),
        num_test=len(data["test"]),
        steps_per_epoch=train_steps(len(data["train"]), cfg),
        epochs=cfg.epochs,
        start_epoch=start_epoch,
    )


def run_epochs(prep, loop, state, emit, stop, run_dir, started) -> tuple[RunStatus, str]:
    """The epochs left, each followed by its checkpoints (written in the background, drained
    before this returns); (status, message) of how they ended. The order of an epoch's row and
    its checkpoints: train/checkpoint_writer.py."""
    cfg = prep.config
    try:
        with _checkpoint_writer(run_dir) as writer:
            if writer is not None and loop.best_unsaved:  # a resume whose best.pt was lost
                _save_lost_best(run_dir, loop, state)
            if "frozen_features" in prep.fast_paths:
                loop.step_model, loop.data = _frozen_features(loop, cfg, emit, stop)
            loop.net = loop.ctx.topology.wrap(loop.step_model)  # DDP; `model` stays plain
            pruned = _epochs(prep, loop, state, (emit, stop), writer, started)
            if writer is not None:
                writer.drain()
            if pruned:
                return RunStatus.PRUNED, pruned
    except Stopped:
        return RunStatus.INTERRUPTED, f"stopped during epoch {state.epoch + 1}"
    except Diverged as exc:
        return RunStatus.DIVERGED, str(exc)
    except StorageError as exc:  # a checkpoint, or a metrics row or the summary (the writer)
        return RunStatus.FAILED, str(exc)
    except torch.cuda.OutOfMemoryError:
        return RunStatus.FAILED, (
            f"out of GPU memory at batch_size={cfg.batch_size}: try --set batch_size="
            f"{max(cfg.batch_size // 2, 1)}"
        )
    return RunStatus.COMPLETED, ""


def _epochs(prep, loop, state, listeners, writer, started) -> str | None:
    """Each epoch left: its row, the first one's check of precision=auto, its checkpoints; the
    judge's reason if it ended them."""
    emit, stop = listeners
    epochs = prep.config.epochs
    for epoch in range(first := state.epoch + 1, epochs + 1):
        result = run_epoch(prep, loop, state, epoch, emit, stop)
        event = result.event(loop.run_id, epochs)
        emit(event)  # the row first, then its checkpoints
        if epoch == first:
            probe_check.after_first_epoch(
                prep, loop.data, loop.ctx.topology, result.seconds, emit, loop.run_id
            )
        if writer is not None:
            save_checkpoints(writer, loop, state, result, time.monotonic() - started)
        verdict = loop.judge(event) if loop.judge is not None else None  # sees every epoch
        if verdict and epoch < epochs:  # after the last one the run is complete
            return verdict
    return None


def run_epoch(prep: Prepared, loop: Loop, state: TrainState, epoch: int, emit, stop) -> EpochResult:
    """Train one epoch, then evaluate on the whole train and val splits; keeps the best weights
    and records the epoch in `state`."""
    cfg, ctx = prep.config, loop.ctx
    t0 = time.monotonic()
    _seed_epoch(cfg.seed, epoch, ctx.topology.rank)
    lr = loop.optimizer.param_groups[0]["lr"]
    train_one_epoch(loop, cfg, state, epoch, emit, stop)
    loop.scheduler.step()
    ctx.topology.sync_buffers(loop.model)
    train_loss, train_acc = evaluate(loop.step_model, loop.data["train"], cfg, ctx, stop)
    val_loss, val_acc = evaluate(loop.step_model, loop.data["val"], cfg, ctx, stop)
    is_best = val_acc > state.best_val_acc
    if is_best:
        state.best_epoch, state.best_val_acc = epoch, val_acc
        weights = loop.model.state_dict().items()
        loop.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in weights}
    state.epoch = epoch
    result = EpochResult(
        epoch,
        train_loss,
        train_acc,
        val_loss,
        val_acc,
        lr,
        time.monotonic() - t0,
        is_best,
        t0,
    )
    state.history.append(result.history_row())
    return result


def _save_lost_best(run_dir: Path, loop: Loop, state: TrainState) -> None:
    """best.pt again, now (a completed run deletes last.pt, which alone holds the best here)."""
    save_best(run_dir, loop.best_weights, state.best_epoch, state.best_val_acc)
    loop.best_unsaved = False


def _checkpoint_writer(run_dir: Path | None):
    """The background writer, or nothing to write to (a rank other than 0, no folder)."""
    return CheckpointWriter(run_dir) if run_dir is not None else contextlib.nullcontext()


def save_checkpoints(
    writer: CheckpointWriter, loop: Loop, state: TrainState, result: EpochResult, seconds: float
) -> None:
    """Copy this epoch's state (before the next step changes it) and hand it to the writer."""
    writer.drain()  # one copy in memory at a time: the previous epoch's write ends first
    best = None
    if loop.best_weights is not None and (result.is_best or loop.best_unsaved):
        best = BestWeights(loop.best_weights, state.best_epoch, state.best_val_acc)
        loop.best_unsaved = False
    model, optimizer, scheduler, scaler = loop.model, loop.optimizer, loop.scheduler, loop.scaler
    writer.submit(take_snapshot(model, optimizer, scheduler, scaler, state, seconds, best))


def finish(prep, loop, state, status, message, seconds, on_test) -> RunEnded:
    """The summary; for a completed run also the test pass with the best weights."""
    cfg = prep.config
    summary = run_summary(state, prep, seconds)
    if status == RunStatus.COMPLETED and loop.best_weights is not None:
        loop.model.load_state_dict(loop.best_weights)
        test = loop.data["test"]
        # one pass gives both the summary's figures and the per-class results
        summary["test_loss"], summary["test_acc"], preds = evaluate_with_predictions(
            loop.step_model, test, cfg, loop.ctx
        )
        if on_test is not None:  # per-class accuracy and confusions: runs/results.py
            on_test(prep.splits, test, preds)
    return RunEnded(run_id=loop.run_id, status=status, summary=summary, message=message)


def _seed_epoch(seed: int, epoch: int, rank: int = 0) -> None:
    """Dropout and augmentation draws follow (seed, epoch): a resumed epoch replays exactly.
    Each distributed rank draws its own (its images differ), still replayable."""
    s = seed * 1_000_003 + epoch + rank * 1_000_000_007
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s % 2**32)


def train_one_epoch(loop: Loop, cfg: RunConfig, state: TrainState, epoch: int, emit, stop) -> float:
    """One pass over the shuffled train split; a Step event per batch. Returns mean step loss."""
    model, criterion, optimizer, scaler = loop.net, loop.criterion, loop.optimizer, loop.scaler
    split, ctx = loop.data["train"], loop.ctx
    topology = ctx.topology
    set_train_mode(topology.unwrap(model), cfg.model, cfg.freeze)
    order = topology.shard_train(train_order(len(split), cfg, epoch))
    batch = topology.local_batch(cfg.batch_size)  # batch_size is the global batch
    steps = math.ceil(len(order) / batch)
    total = 0.0
    for step, (images, labels) in enumerate(iterate_batches(split, batch, order, pin=ctx.pin), 1):
        if topology.should_stop(stop):
            raise Stopped
        x = ctx.to_input(images, ctx.augment)
        y = labels.to(ctx.device, non_blocking=True)
        with ctx.autocast():
            logits = model(x)
        loss = criterion(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        value = topology.step_loss(loss, len(labels), stop)  # the global batch's loss
        state.global_step += 1
        _check_divergence(value, state, cfg)
        total += value
        emit(
            Step(
                run_id=loop.run_id,
                epoch=epoch,
                step=step,
                steps_per_epoch=steps,
                global_step=state.global_step,
                loss=value,
                lr=optimizer.param_groups[0]["lr"],
            )
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


def _frozen_features(loop: Loop, cfg, emit, stop):
    def check_stop() -> None:
        if loop.ctx.topology.should_stop(stop):  # all ranks agree, so none stops alone mid-cache
            raise Stopped

    def say(message: str) -> None:
        emit(Log(run_id=loop.run_id, message=message))

    ctx = loop.ctx
    return frozen_features.cache_frozen_features(
        loop.model, cfg, loop.data, ctx.to_input, ctx.autocast, say, check_stop
    )
