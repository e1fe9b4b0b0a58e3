"""Which columns the console's Runs table shows, and under which names.

The run's id and status first, then the settings that tell the listed runs apart (a config key
whose value differs between two of them: classes, image size, seed...), then the results. A
setting every run shares says nothing about one row against another: it stays in the run's
detail (or behind the table's "all columns" key). The report's own names (NUM_EPOCHS,
FINAL_TRAIN_LOSS) stay in its exports; the console uses the words below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

LEADING = ("id", "status")
# Settings in the order they show when they vary: what changes the data first, then the model,
# then the optimiser; any other config key that varies follows in name order.
SETTINGS = (
    "preset",
    "classes",
    "image_size",
    "resize",
    "batch_size",
    "seed",
    "precision",
    "model",
    "weights",
    "freeze",
    "augment",
    "lr",
    "epochs",
    "step_size",
    "gamma",
)
# Keys that change neither what a run learns nor its figures: never a column. The preset is a
# column only among all settings: a run's id ends with it already.
NOT_SETTINGS = frozenset({"threads", "eval_batch_size", "keep_last", "device"})
# The results a row is judged by: kept in sight at any width, before any setting that does not fit.
IN_SIGHT = ("max_val_acc", "test_acc")
RESULTS = ("max_val_acc", "test_acc", "final_train_loss", "accuracy_gap", "loss_gap", "duration")

LABELS = {
    "id": "Run",
    "status": "Status",
    "preset": "Preset",
    "classes": "Classes",
    "image_size": "Image size",
    "resize": "Resize",
    "batch_size": "Batch",
    "seed": "Seed",
    "precision": "Precision",
    "model": "Model",
    "weights": "Weights",
    "freeze": "Freeze",
    "augment": "Augment",
    "aug_p": "Aug p",
    "lr": "LR",
    "epochs": "Epochs",
    "step_size": "Step size",
    "gamma": "Gamma",
    "momentum": "Momentum",
    "weight_decay": "Weight decay",
    "val_fraction": "Val fraction",
    "last_batch": "Last batch",
    "max_val_acc": "Best val",
    "test_acc": "Test acc",
    "final_train_loss": "Train loss",
    "accuracy_gap": "Acc gap",
    "loss_gap": "Loss gap",
    "duration": "Time",
}


# The report's column names the Studies tables take from it, where the key's word is not enough.
REPORT_NAMES = {
    "NUM_EPOCHS": "epochs",
    "TEST_ACCURACY": "test_acc",
    "TEST_ACCURACY_FREEZE": "Test acc, frozen",
    "AUG_TYPE": "Augmentation",
    "NET": "Network",
}


def report_label(name: str) -> str:
    """A report column's name (TEST_ACCURACY, NUM_EPOCHS) as the console shows it."""
    word = REPORT_NAMES.get(name, name.lower())
    return LABELS.get(word, word[:1].upper() + word[1:].replace("_", " "))


def label(key: str) -> str:
    """The console's name for a column: its word above, else the key with spaces."""
    return LABELS.get(key, key.replace("_", " ").capitalize())


def varying_settings(rows: Iterable[Mapping[str, Any]], keys: Iterable[str]) -> list[str]:
    """The keys (of `keys`, settings only) whose value is not the same in every row; a row
    without the key counts as one more value. In SETTINGS order, then by name."""
    rows = list(rows)
    varying = []
    for key in keys:
        if key in NOT_SETTINGS or key in LEADING or key in RESULTS or key == "preset":
            continue
        values = {repr(row.get(key)) for row in rows}
        if len(values) > 1:
            varying.append(key)
    return sorted(varying, key=_setting_order)


def table_keys(
    rows: Iterable[Mapping[str, Any]],
    settings: Iterable[str],
    everything: bool = False,
    width: int = 0,
    widths: Mapping[str, int] | None = None,
) -> list[str]:
    """The Runs table's columns for these rows: id, status, the settings that vary (every
    setting when `everything`), then the results.

    Given the table's `width` and each column's `widths` (padding included), the settings that
    would push both accuracies out of sight move behind the results, to the right."""
    rows = list(rows)
    settings = list(dict.fromkeys(settings))
    if everything:
        shown = sorted((k for k in settings if k not in NOT_SETTINGS), key=_setting_order)
    else:
        shown = varying_settings(rows, settings)
    later: list[str] = []
    if width and widths is not None and not everything:
        room = width - sum(widths.get(k, 0) for k in (*LEADING, *IN_SIGHT))
        kept = []
        for key in shown:
            if widths.get(key, 0) <= room:
                kept.append(key)
                room -= widths.get(key, 0)
            else:
                later.append(key)
        shown = kept
    return [*LEADING, *shown, *RESULTS, *later]


def _setting_order(key: str) -> tuple[int, str]:
    return (SETTINGS.index(key), "") if key in SETTINGS else (len(SETTINGS), key)
