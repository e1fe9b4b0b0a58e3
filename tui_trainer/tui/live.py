"""What the watch screen shows about one run, fed by engine events or read from its folder.

Both sources produce the same rows the run writer puts in metrics.jsonl (`dataclasses.asdict` of
Step / Epoch events carries the same keys), so the plots draw a live run and a run followed from
disk with the same code.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape

from tui_trainer.events import Epoch, Event, Log, RunEnded, RunStarted, RunStatus, Step
from tui_trainer.runs.status import PREPARING
from tui_trainer.runs.store import Run

LOG_LINES = 200


@dataclass
class RunView:
    run_id: str = ""
    label: str = ""  # preset and overrides, for the status line
    status: str = PREPARING  # PREPARING, then the run's RunStatus (SKIPPED: left to another)
    source: str = "app"  # app (trained here, fed by events) | disk (followed from its folder)
    epochs_total: int = 0
    steps_per_epoch: int = 0
    start_epoch: int = 1
    epoch: int = 0  # the epoch in progress (or the last one seen)
    step: int = 0  # the step within it
    lr: float | None = None
    best_val_acc: float | None = None
    best_epoch: int | None = None
    device: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    summary: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # what preparation is doing ("decoded 400/8677 images")
    started_at: float | None = None  # time.time() of the first step of this session
    steps_at_start: int = 0  # global steps already done when started_at was taken

    @property
    def finished(self) -> bool:
        return self.status not in (PREPARING, RunStatus.RUNNING)

    # --- fed by engine events ----------------------------------------------------------------

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
            self.status = RunStatus.RUNNING
            self.epochs_total = event.epochs
            self.steps_per_epoch = event.steps_per_epoch
            self.start_epoch = event.start_epoch
            self.epoch = event.start_epoch
            self.device = f"{event.device} {event.precision}"
            self.log.append(
                f"started {event.run_id}: {event.num_classes} classes, "
                f"{event.num_train}/{event.num_val}/{event.num_test} images, {self.device}"
            )
        elif isinstance(event, Step):
            self.apply_steps([event])
        elif isinstance(event, Epoch):
            row = dataclasses.asdict(event)
            self.epochs.append(row)
            self._note_epoch(row)
            self.log.append(
                f"epoch {event.epoch}/{event.epochs} train_acc={event.train_acc:.3f} "
                f"val_acc={event.val_acc:.3f} val_loss={event.val_loss:.3f} "
                f"{event.seconds:.1f}s" + (" *best" if event.is_best else "")
            )
        elif isinstance(event, Log):
            self.note = event.message
            if event.level != "info" or not event.message.startswith("decoded "):
                prefix = "" if event.level == "info" else f"{event.level}: "
                self.log.append(prefix + event.message)
        elif isinstance(event, RunEnded):
            self.status = event.status
            self.summary = dict(event.summary)
            test = event.summary.get("test_acc")
            self.log.append(
                f"ended {event.status}"
                + (f": {event.message}" if event.message else "")
                + (f" test_acc={test:.3f}" if isinstance(test, float) else "")
            )

    def apply_steps(self, steps: list[Step] | tuple[Step, ...]) -> None:
        if not steps:
            return
        if self.started_at is None:
            self.started_at = time.time()
            self.steps_at_start = steps[0].global_step - 1
        self.steps.extend(dataclasses.asdict(s) for s in steps)
        last = steps[-1]
        self.epoch, self.step, self.lr = last.epoch, last.step, last.lr
        self.steps_per_epoch = last.steps_per_epoch

    def _note_epoch(self, row: dict[str, Any]) -> None:
        self.lr = row.get("lr", self.lr)
        if self.best_val_acc is None or row["val_acc"] > self.best_val_acc:
            self.best_val_acc, self.best_epoch = row["val_acc"], row["epoch"]

    # --- read from a run folder --------------------------------------------------------------

    @classmethod
    def from_run(cls, run: Run) -> RunView:
        """The whole view of a run from its folder (a headless run, or one that has ended)."""
        meta, summary = run.meta(), run.summary()
        return cls.from_folder(run.id, meta, summary, run.status(summary), run.metrics())

    @classmethod
    def from_folder(
        cls,
        run_id: str,
        meta: dict[str, Any],
        summary: dict[str, Any],
        status: str,
        rows: Iterable[dict[str, Any]],
    ) -> RunView:
        """The view of a run from what was read of its folder: config.json, summary.json, its
        status and metrics.jsonl's rows so far; `add_rows` and `note_summary` keep it current."""
        view = cls(run_id=run_id, source="disk", status=status, summary=summary)
        view.note_summary(summary, status, meta)
        view.log.append(f"following {view.run_id} from its folder ({view.status})")
        view.add_rows(rows)
        if summary.get("message"):
            view.log.append(str(summary["message"]))
        return view

    def note_summary(self, summary: dict[str, Any], status: str, meta: dict[str, Any]) -> None:
        """A (re)read summary.json: status, totals, device; its message once the run ended."""
        config = meta.get("config", {})
        ended = not self.finished and status not in (PREPARING, RunStatus.RUNNING)
        self.status, self.summary = status, summary
        self.epochs_total = int(summary.get("epochs") or config.get("epochs") or 0)
        self.device = " ".join(str(summary[k]) for k in ("device", "precision") if k in summary)
        self.steps_per_epoch = int(summary.get("steps_per_epoch") or 0) or self.steps_per_epoch
        if not self.finished and summary.get("started_at"):
            self.started_at = float(summary["started_at"])
        if ended:
            self.log.append(
                f"ended {status}" + (f": {summary['message']}" if summary.get("message") else "")
            )

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """metrics.jsonl rows appended since the last read."""
        rows = list(rows)
        steps = [row for row in rows if row.get("kind") == "step"]
        epochs = [row for row in rows if row.get("kind") == "epoch"]
        first_steps = not self.steps
        self.steps.extend(steps)
        self.epochs.extend(epochs)
        for row in epochs:
            self._note_epoch(row)
            self.log.append(
                f"epoch {row['epoch']}/{self.epochs_total} train_acc={row['train_acc']:.3f} "
                f"val_acc={row['val_acc']:.3f} val_loss={row['val_loss']:.3f}"
            )
        if steps:
            last = steps[-1]
            self.epoch, self.step, self.lr = last["epoch"], last["step"], last.get("lr")
            if first_steps:
                self.steps_at_start = steps[0].get("global_step", 1) - 1
        if self.steps and epochs:
            # an older run's folder (no steps_per_epoch) tells it once an epoch is done
            done = {e["epoch"] for e in self.epochs}
            self.steps_per_epoch = self.steps_per_epoch or max(
                (s["step"] for s in self.steps if s["epoch"] in done), default=0
            )

    # --- derived numbers for the status line ---------------------------------------------------

    @property
    def last_epoch_done(self) -> int:
        return max((e["epoch"] for e in self.epochs), default=self.start_epoch - 1)

    @property
    def evaluating(self) -> bool:
        """Every step of the epoch is done and its evaluation is under way."""
        return (
            not self.finished
            and self.step > 0
            and self.step == self.steps_per_epoch
            and self.epoch > self.last_epoch_done
        )

    def fraction(self) -> float:
        """How much of the run is done, by steps where the epoch length is known."""
        if self.status == RunStatus.COMPLETED:
            return 1.0
        if not self.epochs_total:
            return 0.0
        if self.steps_per_epoch and self.steps:
            done = (self.epoch - 1) + self.step / self.steps_per_epoch
        else:
            done = self.last_epoch_done
        return min(done / self.epochs_total, 1.0)

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Remaining time: from whole epochs (training and evaluation) once one is done, else
        from the step rate so far."""
        if self.finished or not self.epochs_total:
            return None
        in_epoch = self.step / self.steps_per_epoch if self.steps_per_epoch else 0.0
        timed = [e["seconds"] for e in self.epochs if e.get("seconds")]
        if timed:
            left = self.epochs_total - self.last_epoch_done - (0 if self.evaluating else in_epoch)
            return sum(timed) / len(timed) * max(left, 0.0)
        steps_done = len(self.steps)
        if self.started_at is None or not steps_done or not self.steps_per_epoch:
            return None
        elapsed = (now or time.time()) - self.started_at
        steps_left = self.epochs_total * self.steps_per_epoch - self.steps_at_start - steps_done
        return elapsed / steps_done * max(steps_left, 0)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def status_text(view: RunView, queued: int = 0) -> str:
    """Two lines: status and run; then progress, ETA, LR and the best val accuracy so far."""
    where = "" if view.source == "app" else "  [dim](followed from its folder)[/dim]"
    head = f"[b]{view.status}[/b]  {escape(view.run_id or view.label)}{where}"
    if view.status == PREPARING:
        parts = [escape(view.note or "decoding images, building the model")]
    else:
        parts = [
            f"epoch {view.epoch or '-'}/{view.epochs_total or '?'}",
            "evaluating" if view.evaluating else f"step {view.step}/{view.steps_per_epoch or '?'}",
        ]
        if not view.finished:
            parts.append(f"ETA {format_seconds(view.eta_seconds())}")
        parts.append(f"lr {view.lr:g}" if view.lr is not None else "lr -")
        best = view.best_val_acc
        parts.append(
            f"best val {best:.3f} (epoch {view.best_epoch})" if best is not None else "best -"
        )
        test = view.summary.get("test_acc")
        if view.finished and isinstance(test, float):
            parts.append(f"test acc {test:.3f}")
    if queued:
        parts.append(f"{queued} queued")
    return head + "\n" + "  ".join(parts)
