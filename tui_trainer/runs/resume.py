"""Put a stopped run's folder back to its last completed epoch so the run can continue in it,
and read the checkpoints it continues from (`load_resume_state`).

A run stopped at any moment (Ctrl-C, a crash, `kill -9`) leaves at most: step rows of a partly
trained epoch, half a line at the end of metrics.jsonl, and `.NAME.*.tmp` files of an atomic write
that never got renamed. last.pt (written atomically before the epoch's metrics row) says which
epoch was completed; everything after it is cut, and an epoch row that a kill lost between last.pt
and metrics.jsonl is rebuilt from the history last.pt keeps. The curves stay continuous: every
epoch appears once and the step count never goes back.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from tui_trainer.errors import UserError
from tui_trainer.files import write_json_atomic, write_jsonl_atomic
from tui_trainer.runs.store import Run, initial_summary

# Statuses `--resume` continues from; `completed` and `diverged` would only repeat themselves.
RESUMABLE = ("interrupted", "crashed", "failed")
EPOCH_ROW_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def check_resumable(run: Run) -> None:
    """Raise UserError (one line: what is wrong and what to do) unless `run` can continue."""
    status = run.status()
    if status in RESUMABLE:
        return
    hint = {
        "completed": "it has nothing left to train: start a new run with `tui-trainer run PRESET`",
        "diverged": "resuming would replay the same steps: start a new run with a lower lr",
        "running": f"its process (pid {run.summary().get('pid')} on {run.summary().get('host')})"
        " is still training: stop it first",
    }.get(status, "only interrupted, crashed or failed runs resume")
    raise UserError(f"run {run.id} is {status}: {hint}")


def rewound_metrics(
    rows: list[dict[str, Any]], epoch: int, history: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The metrics rows of epochs 1..`epoch` in file order, each epoch row once; epoch rows
    missing from `rows` are rebuilt from `history` (last.pt's per-epoch records)."""
    kept: list[tuple[int, int, dict[str, Any]]] = []
    seen_epoch_rows: set[int] = set()
    current = 0
    for row in rows:
        row_epoch = row.get("epoch")
        if isinstance(row_epoch, int) and not isinstance(row_epoch, bool):
            if row_epoch > epoch:
                continue
            current = row_epoch
        if row.get("kind") == "epoch":
            if current in seen_epoch_rows:
                continue
            seen_epoch_rows.add(current)
        kept.append((current, int(row.get("kind") == "epoch"), row))
    for record in history:
        n = record.get("epoch")
        if isinstance(n, int) and n <= epoch and n not in seen_epoch_rows:
            rebuilt = {"kind": "epoch", "epoch": n}
            rebuilt.update({k: record[k] for k in EPOCH_ROW_KEYS if k in record})
            kept.append((n, 1, rebuilt))
    kept.sort(key=lambda item: item[:2])  # stable: file order within an epoch
    return [row for _, _, row in kept]


def remove_temp_files(run: Run) -> list[str]:
    """Delete `.NAME.*.tmp` left by an atomic write that a kill cut short; return their names."""
    removed = []
    for path in run.path.iterdir():
        if path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def rewind(run: Run, resume: dict[str, Any] | None) -> None:
    """Cut the folder back to `resume` (last.pt's contents; None: no epoch finished) and mark the
    run running again under this process. Only call it on a run `check_resumable` accepted."""
    epoch = resume["epoch"] if resume else 0
    history = resume["state"]["history"] if resume else []
    remove_temp_files(run)
    write_jsonl_atomic(run.metrics_path, rewound_metrics(run.metrics(), epoch, history))
    summary = run.summary() or initial_summary()
    for stale in ("message", "ended_at", "test_acc", "test_loss"):
        summary.pop(stale, None)
    summary.update(
        status="running",
        pid=os.getpid(),
        host=socket.gethostname(),
        epochs_done=epoch,
        resumed_at=time.time(),
        resumes=int(summary.get("resumes", 0)) + 1,
    )
    write_json_atomic(run.summary_path, summary)


def load_resume_state(run_dir: Path) -> dict[str, Any]:
    """last.pt plus the best weights (from best.pt, or last.pt's own if it was the best)."""
    import torch  # here: listing and checking runs needs no torch

    path = run_dir / "last.pt"
    if not path.is_file():
        raise UserError(f"{run_dir} has no last.pt (no epoch finished): start it again instead")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        best_epoch = ckpt["state"]["best_epoch"]
    except Exception as exc:  # noqa: BLE001 - written atomically, so only outside damage gets here
        raise UserError(
            f"{path} is unreadable ({type(exc).__name__}): delete it to resume from the start"
        ) from None
    best_path = run_dir / "best.pt"
    try:
        best = torch.load(best_path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - missing or damaged: last.pt may still hold the best
        best = {}
    if best.get("epoch") == best_epoch:
        ckpt["best_model"] = best["model"]
    elif best_epoch == ckpt["epoch"]:
        ckpt["best_model"] = ckpt["model"]
    return ckpt
