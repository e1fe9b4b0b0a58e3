"""The CLI's view of a run: a Rich progress bar on a terminal, else one plain line per epoch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tui_trainer.events import Epoch, Event, EventCallback, Log, RunEnded, RunStarted, Step


def _epoch_line(e: Epoch) -> str:
    return (
        f"epoch {e.epoch}/{e.epochs}  train_loss={e.train_loss:.4f} train_acc={e.train_acc:.4f}  "
        f"val_loss={e.val_loss:.4f} val_acc={e.val_acc:.4f}  lr={e.lr:g}  {e.seconds:.1f}s"
        + ("  *best" if e.is_best else "")
    )


def _print_plain(event: Event) -> None:
    """Piped output: one line when the run starts, one per epoch, and warnings."""
    if isinstance(event, RunStarted):
        print(
            f"run {event.run_id}: {event.num_train} train / {event.num_val} val / "
            f"{event.num_test} test images, {event.num_classes} classes, "
            f"{event.device} {event.precision}",
            flush=True,
        )
    elif isinstance(event, Epoch):
        print(_epoch_line(event), flush=True)
    elif isinstance(event, Log) and event.level != "info":
        print(f"{event.level}: {event.message}", flush=True)


class _ProgressBar:
    """A terminal's view: one Rich bar over every step of the run, epoch lines above it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: int | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, Step) and self.task is not None:
            self.progress.update(
                self.task,
                completed=event.global_step,
                info=f"epoch {event.epoch} loss {event.loss:.3f} lr {event.lr:g}",
            )
        elif isinstance(event, Epoch):
            self.progress.console.print(_epoch_line(event), highlight=False)
        elif isinstance(event, Log) and event.level != "info":
            self.progress.console.print(f"[yellow]{event.level}:[/] {event.message}")
        elif isinstance(event, RunEnded) and self.task is not None:
            self.progress.stop_task(self.task)

    def _started(self, event: RunStarted) -> None:
        self.console.print(
            f"[bold]{event.run_id}[/] {event.num_classes} classes, "
            f"{event.num_train}/{event.num_val}/{event.num_test} images, "
            f"{event.device} {event.precision}"
        )
        total = event.epochs * event.steps_per_epoch
        done = (event.start_epoch - 1) * event.steps_per_epoch
        self.task = self.progress.add_task("training", total=total, completed=done, info="")


@contextlib.contextmanager
def progress_listener(console: Console, interactive: bool) -> Iterator[EventCallback]:
    """The listener for one run: a progress bar on a terminal (`interactive`), else plain lines."""
    if not interactive:
        yield _print_plain
        return
    bar = _ProgressBar(console)
    with bar.progress:
        yield bar
