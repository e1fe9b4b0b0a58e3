"""The learning-rate range test (Leslie Smith's, as fastai's `lr_find` and Lightning's
`Tuner.lr_find` run it), on the engine's own batches: `find_lr(prepared, options, ...)`.

What it trains: a deep copy of the prepared model, moved, frozen and optimised exactly as a run
builds it (`engine.build_loop`: channels_last, `apply_freeze`'s parameter groups, SGD with the
config's momentum and weight decay, the fp16 grad scaler, autocast, the augmentation in
`BatchContext.to_input`). The prepared model's weights are never touched, nor any run folder.

freeze=conv without augmentation (the `frozen_features` fast path) trains the head on the train
split's cached frozen features, as a run does: the extractor is in eval mode and gets no
gradients, so the head sees the same inputs either way, and the test costs a head's steps instead
of AlexNet's forward passes. Only the train split's features are computed.

The schedule: lr_i = start * (end / start) ** (i / (steps - 1)), i = 0 .. steps - 1, one batch
each, cycling through epochs of the train split's shuffled order (`train_order`, epochs 1, 2, ...)
when an epoch has fewer than `steps` batches. It stops early once the smoothed loss exceeds 4x
its minimum or the loss is not finite (train/lr_curve.py).

The curve, its suggestion rules and its file: train/lr_curve.py (no torch: the front ends
import it at start-up).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from tui_trainer.data.batches import TensorSplit, iterate_batches, seed_everything, train_order
from tui_trainer.errors import Stopped
from tui_trainer.events import Log
from tui_trainer.train import fast_paths, frozen_features
from tui_trainer.train.context import BatchContext, make_context
from tui_trainer.train.lr_curve import Curve, LrFindOptions, LrFindResult, LrFindStep
from tui_trainer.train.models import apply_freeze, set_train_mode
from tui_trainer.train.optimizer import make_sgd
from tui_trainer.train.preparation import Prepared


def find_lr(
    prep: Prepared,
    options: LrFindOptions,
    on_event: Callable[[object], None] | None = None,
    stop: threading.Event | None = None,
) -> LrFindResult:
    """Run the range test on a copy of `prep.model`; `LrFindStep` (and `Log`) events go to
    `on_event`; raises `Stopped` when `stop` is set."""
    say = on_event or (lambda event: None)
    stop = stop or threading.Event()
    cfg = prep.config
    step = _StepSetup.build(prep, options, say, stop)
    curve = Curve()
    batches = _cycle(step.split, cfg, step.ctx.pin)
    for i in range(options.steps):
        if stop.is_set():
            raise Stopped
        lr = options.lr_at(i)
        if not curve.add(lr, step.train(lr, *next(batches))):
            break
        say(LrFindStep(i + 1, options.steps, lr, curve.losses[-1], curve.smoothed[-1]))
        if curve.diverged():
            break
    return curve.result(options, cfg.to_dict())


@dataclass
class _StepSetup:
    """What one step of the test needs, built as `engine.build_loop` builds a run's."""

    net: nn.Module  # the model's copy, or its head on cached frozen features
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ctx: BatchContext
    split: TensorSplit  # the train split's images, or its frozen features
    criterion: nn.Module

    @classmethod
    def build(cls, prep: Prepared, options: LrFindOptions, say, stop) -> _StepSetup:
        cfg = prep.config
        torch.set_num_threads(prep.topology.threads_per_rank(cfg.threads))
        seed_everything(cfg.seed)  # dropout draws follow the seed, as a run's
        model = copy.deepcopy(prep.model).to(prep.device, memory_format=torch.channels_last)
        params = apply_freeze(model, cfg.model, cfg.freeze)
        optimizer = make_sgd(params, cfg, lr=options.start)
        scaler = torch.amp.GradScaler(prep.device.type, enabled=prep.precision == "fp16")
        ctx = make_context(prep)
        train = fast_paths.place({"train": prep.tensors["train"]}, prep.device, prep.fast_paths)
        net: nn.Module = model
        if "frozen_features" in prep.fast_paths:
            net, train = frozen_features.cache_frozen_features(
                model,
                cfg,
                train,
                ctx.to_input,
                ctx.autocast,
                lambda m: say(Log(run_id="", message=m)),
                _checker(stop),
            )
        set_train_mode(net, cfg.model, cfg.freeze)
        return cls(net, optimizer, scaler, ctx, train["train"], nn.CrossEntropyLoss())

    def train(self, lr: float, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One SGD step at `lr`, as `engine.train_one_epoch` takes it; the batch's loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        ctx = self.ctx
        with ctx.autocast():
            logits = self.net(ctx.to_input(images, ctx.augment))
        loss = self.criterion(logits.float(), labels.to(ctx.device, non_blocking=True))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.item()


def _checker(stop: threading.Event) -> Callable[[], None]:
    def check() -> None:
        if stop.is_set():
            raise Stopped

    return check


def _cycle(split: TensorSplit, cfg, pin: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The train split's batches as a run's epochs give them, epoch after epoch, endlessly."""
    epoch = 1
    while True:
        yield from iterate_batches(
            split, cfg.batch_size, train_order(len(split), cfg, epoch), pin=pin
        )
        epoch += 1
