"""How much disk a run folder takes, from its config alone (no data, no weights read): what a
sweep's dry run adds up before it starts anything.

best.pt holds the model's state dict; last.pt that plus the SGD momentum of every trained
parameter. While the run trains the folder holds both, plus for a moment a second last.pt (the
atomic write's temp file, renamed over the old one); once it completes, last.pt is removed
unless `keep_last=true`. The rows of metrics.jsonl are small beside them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from tui_trainer.config import RunConfig
from tui_trainer.train.models import apply_freeze, build_model

CALTECH101_CLASSES = 101
METRICS_ROW_BYTES = 160  # one step row as json (an epoch row is about as long)
SMALL_FILES_BYTES = 16_000  # config.json (with the class list), summary.json, test_results.json


@dataclass(frozen=True)
class RunFootprint:
    """Bytes on disk of one run folder."""

    best_bytes: int  # best.pt
    last_bytes: int  # last.pt
    metrics_bytes: int  # metrics.jsonl and the small json files
    keep_last: bool

    @property
    def peak_bytes(self) -> int:
        """While it trains: best.pt, last.pt, and the next last.pt being written beside it."""
        return self.best_bytes + 2 * self.last_bytes + self.metrics_bytes

    @property
    def final_bytes(self) -> int:
        """Once it completed."""
        kept = self.last_bytes if self.keep_last else 0
        return self.best_bytes + kept + self.metrics_bytes


@functools.lru_cache(maxsize=64)
def _model_bytes(model: str, classes: int, freeze: str, momentum: bool) -> tuple[int, int]:
    """(weights, momentum buffers) in bytes; cached: a sweep's members share a few models."""
    with torch.device("meta"):
        net = build_model(model, classes)  # random init: the same shapes as any weights
    weights = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    trained = apply_freeze(net, model, freeze)
    return weights, sum(p.numel() * p.element_size() for p in trained) if momentum else 0


def estimate_footprint(
    config: RunConfig, num_classes: int | None = None, steps_per_epoch: int = 0
) -> RunFootprint:
    """The folder of a run of `config` with `num_classes` classes (default: `config.classes`,
    else Caltech-101's 101) and `steps_per_epoch` (0 when unknown: the step rows are left out).
    The model is built on the meta device: no memory, no weights loaded."""
    classes = num_classes or config.classes or CALTECH101_CLASSES
    weights, momentum = _model_bytes(config.model, classes, config.freeze, bool(config.momentum))
    rows = config.epochs * (steps_per_epoch + 1)
    return RunFootprint(
        best_bytes=weights,
        last_bytes=weights + momentum,
        metrics_bytes=rows * METRICS_ROW_BYTES + SMALL_FILES_BYTES,
        keep_last=config.keep_last,
    )
