"""Evaluation in eval mode over a whole split: mean cross-entropy, accuracy and, for the test pass,
the predicted class of every image. Under torchrun each rank evaluates its chunk of the split and
the sums are added across ranks, so the figures equal a single process's."""

from __future__ import annotations

import torch
from torch import nn

from tui_trainer.config import eval_batch
from tui_trainer.data.batches import iterate_batches
from tui_trainer.errors import Stopped
from tui_trainer.train.context import BatchContext


def _eval_logits(model, split, cfg, ctx: BatchContext, stop=None):
    """(fp32 logits, labels) per batch, in eval mode, over this rank's chunk of the split in its
    stored order (all of it in a single process)."""
    model.eval()
    topology = ctx.topology
    # Distributed ranks hold unequal chunks of the split: they stop only at a train step, together.
    index = topology.shard_eval(len(split))
    batch = max(1, topology.local_batch(eval_batch(cfg)))
    for images, labels in iterate_batches(split, batch, index, pin=ctx.pin):
        if stop is not None and stop.is_set() and not topology.active:
            raise Stopped
        x = ctx.to_input(images)
        y = labels.to(ctx.device, non_blocking=True)
        with ctx.autocast():
            logits = model(x)
        yield logits.float(), y


def evaluate(model, split, cfg, ctx: BatchContext, stop=None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole split, in eval mode."""
    loss, acc, _ = _evaluate(model, split, cfg, ctx, stop, keep_predictions=False)
    return loss, acc


def evaluate_with_predictions(
    model, split, cfg, ctx: BatchContext
) -> tuple[float, float, torch.Tensor]:
    """`evaluate`, plus the predicted class of every image of the split in order (the per-class
    results), from the same single pass."""
    return _evaluate(model, split, cfg, ctx, None, keep_predictions=True)


@torch.no_grad()
def _evaluate(model, split, cfg, ctx: BatchContext, stop, keep_predictions: bool):
    criterion = nn.CrossEntropyLoss(reduction="sum")
    # sums stay on the device: one GPU sync per split, not one per batch
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    correct = torch.zeros((), dtype=torch.int64, device=ctx.device)
    preds = []
    for logits, y in _eval_logits(model, split, cfg, ctx, stop):
        loss_sum += criterion(logits, y)
        pred = logits.argmax(1)
        correct += (pred == y).sum()
        if keep_predictions:
            preds.append(pred)
    loss_sum, correct = ctx.topology.sum_eval(loss_sum, correct)
    n = max(len(split), 1)
    predictions = None
    if keep_predictions:  # this rank's chunk, then the whole split's from every rank's chunk
        mine = torch.cat(preds) if preds else correct.new_zeros(0)  # a rank's chunk may be empty
        predictions = ctx.topology.gather_eval(mine, len(split)).cpu()
    return loss_sum.item() / n, correct.item() / n, predictions
