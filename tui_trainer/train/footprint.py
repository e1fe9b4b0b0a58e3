"""How much disk a run folder takes, from its config alone (no data, no weights read): what a
sweep's dry run adds up before it starts anything.

best.pt holds the model's state dict; last.pt that plus the SGD momentum of every trained
parameter. While the run trains the folder holds both, plus for a moment a second last.pt (the
atomic write's temp file, renamed over the old one); once it completes, last.pt is removed
unless `keep_last=true`. The rows of metrics.jsonl are small beside them.

The sizes come from a table of each network's parameter counts, not from building it, so a dry
run needs no torch (tests/unit/test_footprint.py checks the table against torchvision's models).
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_trainer.config import RunConfig

CALTECH101_CLASSES = 101
METRICS_ROW_BYTES = 160  # one step row as json (an epoch row is about as long)
SMALL_FILES_BYTES = 16_000  # config.json (with the class list), summary.json, test_results.json
FLOAT32_BYTES = 4


@dataclass(frozen=True)
class Shape:
    """A network's parameters in the parts the freezing policies name (train/models.py)."""

    features: int  # the feature extractor: what freeze=conv freezes and freeze=fc trains
    classifier_body: int  # the classifier's layers before the head (AlexNet's first two FCs)
    head_inputs: int  # the last layer's in_features: its size is (inputs + 1) * classes
    buffer_bytes: int  # BatchNorm's running statistics and counters, in the state dict

    def parameters(self, classes: int) -> int:
        return self.features + self.classifier_body + (self.head_inputs + 1) * classes

    def trained(self, classes: int, freeze: str) -> int:
        if freeze == "fc":
            return self.features
        if freeze == "conv":
            return self.parameters(classes) - self.features
        return self.parameters(classes)


SHAPES = {
    "alexnet": Shape(
        features=2_469_696, classifier_body=54_534_144, head_inputs=4096, buffer_bytes=0
    ),
    "resnet18": Shape(features=11_176_512, classifier_body=0, head_inputs=512, buffer_bytes=38_560),
    "resnet50": Shape(
        features=23_508_032, classifier_body=0, head_inputs=2048, buffer_bytes=212_904
    ),
}


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


def estimate_footprint(
    config: RunConfig, num_classes: int | None = None, steps_per_epoch: int = 0
) -> RunFootprint:
    """The folder of a run of `config` with `num_classes` classes (default: `config.classes`,
    else Caltech-101's 101) and `steps_per_epoch` (0 when unknown: the step rows are left out).
    Every parameter is float32, as the engine keeps them (autocast computes in lower precision
    but stores float32)."""
    classes = num_classes or config.classes or CALTECH101_CLASSES
    shape = SHAPES[config.model]
    weights = shape.parameters(classes) * FLOAT32_BYTES + shape.buffer_bytes
    trained = shape.trained(classes, config.freeze) if config.momentum else 0
    momentum = trained * FLOAT32_BYTES
    rows = config.epochs * (steps_per_epoch + 1)
    return RunFootprint(
        best_bytes=weights,
        last_bytes=weights + momentum,
        metrics_bytes=rows * METRICS_ROW_BYTES + SMALL_FILES_BYTES,
        keep_last=config.keep_last,
    )
