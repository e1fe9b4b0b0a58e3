"""The one way a command follows a training run (`run`, `run --resume`, `sweep`): stop cleanly
on the first Ctrl-C or SIGTERM, abort on a second (exit 130 and a hint), show progress, print the
summary, turn the end status into an exit code. In a child the console started detached
(runs/detached.py), each run it starts gets the child's log and is named in its launch record.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from tui_trainer.cli.common import err, interactive, out, print_summary
from tui_trainer.cli.progress import progress_listener
from tui_trainer.events import Event, EventCallback, RunEnded, RunStarted, RunStatus, fan_out
from tui_trainer.runs import detached
from tui_trainer.runs.status import exit_code_for
from tui_trainer.runs.store import Run
from tui_trainer.signals import STOP_SIGNALS, install
from tui_trainer.train.host import is_main_process, process_rank

RUN_RESUME_HINT = "continue the run with `tui-trainer run --resume RUN_ID`"


def exit_code(status: str) -> int:
    """The process's exit code for a run that ended with `status` (runs/status.py's table):
    0 completed, 130 interrupted, 1 failed or diverged."""
    return exit_code_for({status}, interrupted=status == RunStatus.INTERRUPTED)


def stop_on_signals(stop: threading.Event) -> Callable[[], object]:
    """First Ctrl-C / SIGTERM: finish cleanly (status interrupted). A second Ctrl-C: hard stop.
    Returns a function that puts the previous handlers back."""

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if is_main_process():
            err.print("stopping after the current step or images decoding (Ctrl-C again to abort)")

    return install(STOP_SIGNALS, handler)


@contextlib.contextmanager
def stopping(hint: str = RUN_RESUME_HINT) -> Iterator[threading.Event]:
    """The stop event the signals set while the block runs. A second Ctrl-C (no clean stop, the
    run folder shows as crashed) ends the command with exit 130 and `hint`; the previous signal
    handlers are restored either way."""
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        yield stop
    except KeyboardInterrupt:
        err.print(f"aborted: {hint}")
        raise typer.Exit(130) from None
    finally:
        restore()


Launch = Callable[[EventCallback], tuple[Run | None, RunEnded]]


def follow(launch: Launch, runs_dir: Path) -> tuple[Run | None, RunEnded]:
    """Call `launch(on_event)` with the progress display, then print how the run ended.
    Under torchrun rank 0 alone shows progress and the summary; the others stay silent.
    `runs_dir`: where the run's folder is made (a detached child links its log into it)."""
    main = is_main_process()
    with progress_listener(out, interactive() and main) as listener:
        run, ended = launch(fan_out(listener, _log_linker(Path(runs_dir))))
    if main:
        print_summary(ended.status, ended.summary, ended.message)
        if run is not None:  # None: stopped before training, the message says so
            # soft_wrap: the terminal wraps a long path, Rich would cut it into lines
            out.print(f"run folder: {run.path}", markup=False, highlight=False, soft_wrap=True)
    elif ended.status == RunStatus.FAILED:  # rank 0 may be the one that died: say why
        err.print(f"rank {process_rank()}: {ended.message}", markup=False, highlight=False)
    return run, ended


def _log_linker(runs_dir: Path) -> EventCallback | None:
    """In a detached child (or a `--parallel` member): as each run starts, link its log into the
    run folder and name the run in the launch record the console reads."""
    log, record = detached.own_log(), detached.own_launch_record()
    if log is None and record is None:
        return None

    def link(event: Event) -> None:
        if not isinstance(event, RunStarted):
            return
        if log is not None:
            detached.link_log(log, runs_dir / event.run_id)
        if record is not None:
            detached.note_launch(record, event.run_id)

    return link
