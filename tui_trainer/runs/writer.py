"""The run writer: engine events in, the run folder's metrics and summary out."""

from __future__ import annotations

import os
import socket
import time

from tui_trainer.events import Epoch, Event, Log, RunEnded, RunStarted, RunStatus, Step
from tui_trainer.runs.store import Run, initial_summary


class RunWriter:
    """Subscribes to engine events and keeps the run folder's metrics and summary up to date."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.summary = run.summary() or initial_summary()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Step):
            self.run.append_metric(
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
            self.run.append_metric(
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
            self.run.write_summary(self.summary)
        elif isinstance(event, RunStarted):
            self.summary.update(
                status=RunStatus.RUNNING,
                pid=os.getpid(),
                host=socket.gethostname(),
                device=event.device,
                precision=event.precision,
                epochs=event.epochs,
            )
            self.run.write_summary(self.summary)
        elif isinstance(event, RunEnded):
            self.summary.update(event.summary)
            self.summary.update(status=event.status, ended_at=time.time())
            if event.message:
                self.summary["message"] = event.message
            self.run.write_summary(self.summary)
        elif isinstance(event, Log) and event.level == "warning":
            self.summary.setdefault("warnings", []).append(event.message)
