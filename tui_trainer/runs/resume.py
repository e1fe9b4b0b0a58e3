"""Put a stopped run's folder back to its last completed epoch so the run can continue in it,
from the checkpoint it continues from (`train.checkpoint.Checkpoint`, last.pt).

A run stopped at any moment (Ctrl-C, a crash, `kill -9`) leaves at most: step rows of a partly
trained epoch, half a line at the end of metrics.jsonl, and `.NAME.*.tmp` files of an atomic write
that never got renamed. last.pt says which epoch was completed; everything after it is cut. An
epoch's row is written before its checkpoint (`train/checkpoint_writer.py`), so rows of one or two
epochs past last.pt's are common and are dropped: those epochs train again. An epoch row that
last.pt has but metrics.jsonl lacks (its write failed, or a folder of an older version, which
wrote last.pt first) is rebuilt from the history last.pt keeps. The curves stay continuous: every
epoch appears once and the step count never goes back.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from tui_trainer.errors import UserError, writing
from tui_trainer.events import RunStatus
from tui_trainer.files import write_json_atomic, write_jsonl_atomic
from tui_trainer.runs.owner import OWNER_FILE
from tui_trainer.runs.status import RESUMABLE, resumable_names
from tui_trainer.runs.store import Run, initial_summary

if TYPE_CHECKING:
    from tui_trainer.train.checkpoint import Checkpoint


EPOCH_ROW_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def check_resumable(run: Run) -> None:
    """Raise UserError (one line: what is wrong and what to do) unless `run` can continue."""
    status = run.status()
    if status in RESUMABLE:  # a plain string compares as the RunStatus it names
        return
    summary = run.summary()
    hint = {
        RunStatus.COMPLETED: (
            "it has nothing left to train: start a new run with `tui-trainer run PRESET`"
        ),
        RunStatus.DIVERGED: "resuming would replay the same steps: start a new run with a lower lr",
        RunStatus.PRUNED: "its search stopped it as unpromising: the study has moved on",
        RunStatus.RUNNING: f"its process (pid {summary.get('pid')} on {summary.get('host')})"
        " is still training: stop it first",
    }.get(status, f"only {resumable_names()} runs resume")
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
        if path.name.startswith(f".{OWNER_FILE}."):
            continue  # this process's heartbeat may be writing it right now
        if path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def rewind(run: Run, resume: Checkpoint | None) -> None:
    """Cut the folder back to `resume` (last.pt; None: no epoch finished) and mark the run
    running again under this process. Only call it on a run `check_resumable` accepted."""
    epoch = resume.epoch if resume is not None else 0
    history = resume.state.history if resume is not None else []
    remove_temp_files(run)
    with writing(run.metrics_path):  # a disk still full: one line, and the folder as it was
        write_jsonl_atomic(run.metrics_path, rewound_metrics(run.metrics(), epoch, history))
    summary = run.summary() or initial_summary()
    # What only the stopped session's end said. "system" goes too: recorded peaks would hide
    # system.jsonl's while this session trains (or after it crashes); the sampler counts the
    # earlier samples back in, so the peaks written at this session's end cover the whole file.
    for stale in ("message", "ended_at", "test_acc", "test_loss", "system", "stopped"):
        summary.pop(stale, None)
    summary.update(
        status=RunStatus.RUNNING,
        pid=os.getpid(),
        host=socket.gethostname(),
        epochs_done=epoch,
        resumed_at=time.time(),
        resumes=int(summary.get("resumes", 0)) + 1,
    )
    with writing(run.summary_path):
        write_json_atomic(run.summary_path, summary)
