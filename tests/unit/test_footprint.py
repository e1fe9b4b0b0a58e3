"""A run folder's disk, estimated from its config: against the files a real run writes."""

from __future__ import annotations

import pytest
import torch

from tests.support.runs import tiny_config
from tui_trainer.config import MODELS, RunConfig
from tui_trainer.train.checkpoint import TrainState, save_best
from tui_trainer.train.checkpoint_writer import CheckpointWriter, take_snapshot
from tui_trainer.train.footprint import estimate_footprint
from tui_trainer.train.models import apply_freeze, build_model


def test_the_estimate_matches_the_checkpoints_a_resnet18_run_writes(tmp_path):
    config = tiny_config(model="resnet18", classes=10)
    net = build_model("resnet18", 10)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    net(torch.rand(2, 3, 32, 32)).sum().backward()
    optimizer.step()  # the momentum buffers exist from the first step on
    snap = take_snapshot(net, optimizer, scheduler, scaler, TrainState(epoch=1), 1.0, None)
    with CheckpointWriter(tmp_path) as writer:
        writer.submit(snap)
    save_best(tmp_path, snap.last.model, 1, 0.5)

    estimate = estimate_footprint(config)
    last, best = (tmp_path / "last.pt").stat().st_size, (tmp_path / "best.pt").stat().st_size
    assert abs(estimate.last_bytes - last) < 0.01 * last
    assert abs(estimate.best_bytes - best) < 0.01 * best
    assert estimate.peak_bytes > 0.99 * (2 * last + best)  # a second last.pt while it is written
    assert estimate.final_bytes < best + estimate.metrics_bytes + 1  # last.pt removed


def test_alexnet_on_caltech101_frozen_parts_momentum_and_keep_last():
    full = estimate_footprint(RunConfig(), steps_per_epoch=12)
    assert 225e6 < full.best_bytes < 235e6  # 57M float32 parameters
    assert full.last_bytes == 2 * full.best_bytes  # every parameter has its momentum
    assert full.final_bytes == full.best_bytes + full.metrics_bytes
    kept = estimate_footprint(RunConfig(keep_last=True), steps_per_epoch=12)
    assert kept.final_bytes == full.final_bytes + full.last_bytes
    # freeze=conv trains the classifier only: its momentum alone (most of AlexNet's weights)
    conv = estimate_footprint(RunConfig(weights="imagenet", freeze="conv"))
    assert full.best_bytes < conv.last_bytes < full.last_bytes
    no_momentum = estimate_footprint(RunConfig(momentum=0.0))
    assert no_momentum.last_bytes == no_momentum.best_bytes
    # a 10-class head is smaller than a 101-class one; more steps, more metrics rows
    assert estimate_footprint(RunConfig(classes=10)).best_bytes < full.best_bytes
    assert estimate_footprint(RunConfig(), steps_per_epoch=24).metrics_bytes > full.metrics_bytes


@pytest.mark.parametrize("model", MODELS)
def test_the_table_of_shapes_matches_the_networks_torchvision_builds(model):
    for classes in (2, 101):
        with torch.device("meta"):
            net = build_model(model, classes)
        state = sum(t.numel() * t.element_size() for t in net.state_dict().values())
        for freeze in ("none", "conv", "fc"):
            weights = "none" if freeze == "none" else "imagenet"
            config = RunConfig(model=model, classes=classes, freeze=freeze, weights=weights)
            estimate = estimate_footprint(config)
            trained = apply_freeze(net, model, freeze)
            momentum = sum(p.numel() * p.element_size() for p in trained)
            assert (estimate.best_bytes, estimate.last_bytes) == (state, state + momentum), freeze
            for p in net.parameters():
                p.requires_grad_(True)
