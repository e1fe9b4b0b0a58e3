"""The run writer: engine events in, the run folder's metrics and summary out.

A row or summary that cannot be written (disk full, quota, a folder become read-only) raises
`StorageError` (one line: the file, the reason, the free space) into the engine, which ends the
run `failed`; the final summary's own failure is kept in `unsaved` instead of raised, so the end
is still told to the other listeners and the front ends print it.

The system sampler (train/system_sampler.py) appends system.jsonl itself and never writes the
summary: at the run's end the writer stops it and records its peaks as the summary's "system"."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from tui_trainer.errors import StorageError, writing
from tui_trainer.events import Epoch, Event, Log, RunEnded, RunStarted, RunStatus, Step
from tui_trainer.runs.store import Run, initial_summary
from tui_trainer.train.system_metrics import SystemPeaks


class RunWriter:
    """Subscribes to engine events and keeps the run folder's metrics and summary up to date."""

    def __init__(self, run: Run, system_end: Callable[[], SystemPeaks] | None = None) -> None:
        self.run = run
        # stops the system sampler and gives its peaks: the final summary's "system"
        self.system_end = system_end
        self.summary = run.summary() or initial_summary()
        # the final summary's write failed: summary.json still says `running`, which reads as
        # `crashed` (resumable) once this process is gone
        self.unsaved: StorageError | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Step):
            self._append(
                {
                    "kind": "step",
                    "epoch": event.epoch,
                    "step": event.step,
                    "global_step": event.global_step,
                    "loss": event.loss,
                    "lr": event.lr,
                }
            )
        elif isinstance(event, Epoch):
            self._append(
                {
                    "kind": "epoch",
                    "epoch": event.epoch,
                    "train_loss": event.train_loss,
                    "train_acc": event.train_acc,
                    "val_loss": event.val_loss,
                    "val_acc": event.val_acc,
                    "lr": event.lr,
                    "seconds": event.seconds,
                },
                sync=True,
            )
            self.summary.update(epochs_done=event.epoch, heartbeat=time.time())
            self._write_summary()
        elif isinstance(event, RunStarted):
            self.summary.update(
                status=RunStatus.RUNNING,
                pid=os.getpid(),
                host=socket.gethostname(),
                device=event.device,
                precision=event.precision,
                epochs=event.epochs,
                steps_per_epoch=event.steps_per_epoch,  # a follower's progress in epoch 1
            )
            self._write_summary()
        elif isinstance(event, RunEnded):
            self._ended(event)
        elif isinstance(event, Log) and event.level == "warning":
            self.summary.setdefault("warnings", []).append(event.message)

    def _ended(self, event: RunEnded) -> None:
        self.summary.update(event.summary)
        self.summary.update(status=event.status, ended_at=time.time())
        peaks = self.system_end() if self.system_end else None
        if peaks is not None and peaks.samples:
            self.summary["system"] = peaks.to_record()
        if event.message:
            self.summary["message"] = event.message
        try:
            self._write_summary()
        except StorageError as exc:  # the listeners after this one still hear of the end
            self.unsaved = exc

    def _append(self, row: dict, sync: bool = False) -> None:
        with writing(self.run.metrics_path):
            self.run.append_metric(row, sync=sync)

    def _write_summary(self) -> None:
        with writing(self.run.summary_path):
            self.run.write_summary(self.summary)
