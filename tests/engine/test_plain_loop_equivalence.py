"""The engine and the plain notebook-style loop are one algorithm, checked step by step.

On 48 real Caltech-101 images (3 classes, 64 px) the engine (`engine.train`: epochs, StepLR,
the train/val evaluations, best-val weights, the test pass) and `reference.plain_train` (PIL per
item, a DataLoader, ToTensor + Normalize) start from the same seeded initial weights, see the
same batches in the same order (the plain DataLoader's sampler yields the engine's `batch_order`),
run channels_last in fp32 on the CPU with one thread, and draw the same dropout masks (the plain
loop is reseeded at each epoch's start the way the engine reseeds itself). Two epochs with a
StepLR step between them; each epoch either ends on a partial batch (`last_batch=keep`) or drops
it (`last_batch=drop`, DataLoader's `drop_last=True` on the plain side).

Tolerance, fp32 on the CPU: the loops differ only in how uint8 pixels become normalised floats
(ToTensor's x / 255 then (x - 0.5) / 0.5, against the engine's x * 2/255 - 1), at most about
1e-7 relative per input; the convolutions, optimizer and loss are the same calls on the same
shapes. Measured on an AVX2 EPYC: the step losses are bit-identical and the weights after agree
within 4e-9. We allow 1e-6 relative on every loss and 1e-6 absolute on every weight, room for
another CPU's rounding; a real difference (another order, a missed or extra batch, another init,
another LR, an unaligned dropout mask) moves the losses by 1e-4 or more at once (the second
test shows it for one 4-image batch), and training moves the weights by far more than 1e-6.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch

from tests.support.real_subset import real_subset
from tui_trainer.bench import reference
from tui_trainer.config import RunConfig
from tui_trainer.data.batches import batch_order
from tui_trainer.events import Epoch, RunEnded, RunStatus, Step
from tui_trainer.train import engine
from tui_trainer.train.engine import _seed_epoch

LOSS_RTOL = 1e-6
WEIGHT_ATOL = 1e-6


def _config(last_batch: str) -> RunConfig:
    return RunConfig().with_overrides(
        {
            "image_size": 64,
            "resize": 72,
            "batch_size": 6,
            "epochs": 2,
            "lr": 0.05,  # the scratch row's
            "step_size": 1,
            "gamma": 0.5,
            "seed": 3,
            "device": "cpu",
            "precision": "fp32",
            "threads": 1,
            "last_batch": last_batch,
        }
    )


def _engine_run(cfg: RunConfig, data_dir):
    """The engine's step losses per epoch, Epoch events, summary, and initial and final weights."""
    prep = engine.prepare(cfg, data_dir)
    initial = copy.deepcopy(prep.model.state_dict())
    steps: dict[int, list[float]] = {}
    epochs: list[Epoch] = []
    ended: list[RunEnded] = []

    def listen(event) -> None:
        if isinstance(event, Step):
            steps.setdefault(event.epoch, []).append(event.loss)
        elif isinstance(event, Epoch):
            epochs.append(event)
        elif isinstance(event, RunEnded):
            ended.append(event)

    engine.train(prep, listen, threading.Event())
    assert ended[0].status == RunStatus.COMPLETED, ended[0].message
    # after a completed run the model holds the best-val weights (the test pass used them)
    return prep, steps, epochs, ended[0].summary, initial, prep.model.state_dict()


@pytest.mark.parametrize("last_batch", ["keep", "drop"])
def test_engine_and_plain_loop_take_the_same_steps(real_data, tmp_path, last_batch):
    data_dir = real_subset(real_data, tmp_path / "subset")
    cfg = _config(last_batch)
    prep, steps, epochs, summary, initial, final = _engine_run(cfg, data_dir)
    n_train = len(prep.tensors["train"])
    assert n_train % cfg.batch_size != 0, "the subset must end each epoch on a partial batch"

    plain_initial = reference.initial_model(cfg, len(prep.splits.classes)).state_dict()
    for name, tensor in initial.items():
        assert torch.equal(plain_initial[name], tensor), f"initial {name} differs"

    align = reference.Alignment(
        train_order=lambda epoch: batch_order(n_train, cfg.seed, epoch, shuffle=True),
        before_epoch=lambda epoch: _seed_epoch(cfg.seed, epoch),
    )
    plain = reference.plain_train(cfg, data_dir, say=lambda line: None, align=align)

    full, partial = divmod(n_train, cfg.batch_size)
    expected_steps = full + (partial > 0 and last_batch == "keep")
    for row, event in zip(plain.result.epochs, epochs, strict=True):
        engine_losses = steps[row.epoch]
        assert len(engine_losses) == len(row.step_losses) == expected_steps
        assert engine_losses == pytest.approx(row.step_losses, rel=LOSS_RTOL)
        assert event.lr == pytest.approx(row.lr, rel=1e-12)
        assert event.train_loss == pytest.approx(row.train_loss, rel=LOSS_RTOL)
        assert event.val_loss == pytest.approx(row.val_loss, rel=LOSS_RTOL)
        assert (event.train_acc, event.val_acc) == (row.train_acc, row.val_acc)
    assert [e.lr for e in epochs] == pytest.approx([cfg.lr, cfg.lr * cfg.gamma])
    assert summary["best_epoch"] == plain.result.best_epoch
    assert summary["test_acc"] == plain.result.test_acc
    assert summary["test_loss"] == pytest.approx(plain.result.test_loss, rel=LOSS_RTOL)

    plain_final = plain.model.state_dict()
    moved = 0.0
    for name, tensor in final.items():
        assert torch.allclose(plain_final[name], tensor, rtol=0, atol=WEIGHT_ATOL), name
        moved = max(moved, (tensor - initial[name]).abs().max().item())
    assert moved > 100 * WEIGHT_ATOL, "training must move the weights beyond the tolerance"


def test_dropping_the_last_batch_changes_the_steps(real_data, tmp_path):
    """The tolerance above tells one algorithm from another: training on the last partial batch
    of 4 images or not is a different run, from epoch 2's first step on."""
    data_dir = real_subset(real_data, tmp_path / "subset")
    _, keep, *_ = _engine_run(_config("keep"), data_dir)
    _, drop, *_ = _engine_run(_config("drop"), data_dir)
    assert keep[1][: len(drop[1])] == pytest.approx(drop[1], rel=LOSS_RTOL)  # same steps first
    assert keep[2][0] != pytest.approx(drop[2][0], rel=10 * LOSS_RTOL)
