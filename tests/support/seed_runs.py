"""Run folders that repeat experiments over seeds, written by hand with chosen curves: the
grouped Runs table, the band arithmetic and Compare's bands are checked against these numbers.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from tui_trainer.config import load_preset
from tui_trainer.files import write_json_atomic
from tui_trainer.runs.store import Run

# (run id, preset, overrides, precision, val_acc per epoch, status, test_acc)
SEED_RUNS = (
    ("20240201-100000-scratch", "scratch", {"epochs": 4, "seed": 42}, "fp32",
     [0.02, 0.10, 0.30, 0.40], "completed", 0.38),
    ("20240201-110000-scratch", "scratch", {"epochs": 4, "seed": 0}, "fp32",
     [0.02, 0.20, 0.40, 0.50], "completed", 0.50),
    ("20240201-120000-scratch", "scratch", {"epochs": 4, "seed": 1}, "fp32",
     [0.05, 0.15], "running", None),
    # differs by lr: another experiment
    ("20240201-130000-scratch", "scratch", {"epochs": 4, "seed": 42, "lr": 0.01}, "fp32",
     [0.02, 0.04, 0.06, 0.08], "completed", 0.07),
    # differs by precision only: not a repeat either
    ("20240201-140000-scratch", "scratch", {"epochs": 4, "seed": 7}, "bf16",
     [0.03, 0.12, 0.33, 0.45], "completed", 0.46),
    ("20240202-090000-finetune", "finetune", {"epochs": 3, "seed": 42}, "fp32",
     [0.60, 0.75, 0.80], "completed", 0.79),
    ("20240202-100000-finetune", "finetune", {"epochs": 3, "seed": 0}, "fp32",
     [0.62, 0.71, 0.82], "completed", 0.81),
)  # fmt: skip

SCRATCH_IDS = [spec[0] for spec in SEED_RUNS[:3]]
FINETUNE_IDS = [spec[0] for spec in SEED_RUNS[5:]]


def val_loss(acc: float) -> float:
    return round(4.6 - 3 * acc, 6)


def write_seed_run(runs_dir: Path, run_id, preset, overrides, precision, accs, status, test_acc):
    run = Run(runs_dir / run_id)
    run.path.mkdir(parents=True)
    config = load_preset(preset).config.with_overrides(overrides)
    meta = {"config": config.to_dict(), "preset": preset, "precision": precision}
    write_json_atomic(run.config_path, meta)
    rows = [
        {
            "kind": "epoch",
            "epoch": epoch,
            "train_loss": val_loss(acc) - 0.1,
            "train_acc": acc + 0.05,
            "val_loss": val_loss(acc),
            "val_acc": acc,
            "lr": config.lr,
            "seconds": 1.0,
        }
        for epoch, acc in enumerate(accs, start=1)
    ]
    run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"status": status, "epochs_done": len(accs), "max_val_acc": max(accs)}
    if status == "running":  # this process stands in for the trainer: alive on this host
        summary = {"status": status, "pid": os.getpid(), "host": socket.gethostname()}
    else:
        summary.update(test_acc=test_acc, seconds=60.0 * len(accs))
    run.write_summary(summary)
    return run


def make_seed_runs(runs_dir: Path) -> list[Run]:
    return [write_seed_run(runs_dir, *spec) for spec in SEED_RUNS]
