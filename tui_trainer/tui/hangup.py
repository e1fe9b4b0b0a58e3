"""SIGHUP and SIGTERM in the console: a confirmed quit, without the terminal.

A dropped SSH connection sends SIGHUP, and from then on every write to the terminal fails (EIO)
and every read ends; by default the process would die at once, its run left `running`. Here both
signals reach the app on its event loop (`install`), which stops its run cleanly (`interrupted`,
the reason in summary.json's `stopped`) and exits with 128 + the signal's number. Until then:
- the handler points fds 0, 1 and 2 at /dev/null, so Textual's writer thread writes into nothing;
- `HangupSafeDriver` covers the moment before the handler runs: once its writer thread has died
  on a write error, writes are dropped (a full writer queue would block the event loop for
  good); its input thread ends quietly on EIO (Textual's would make the app panic before the
  run has stopped), and `hang_up` ends it, as it would spin on a terminal that reads as closed.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from tui_trainer import signals
from tui_trainer.events import RunStatus
from tui_trainer.runs.store import Run

# The signals handled, and the reason each leaves in the run's summary.
REASONS: dict[int, str] = {signal.SIGTERM: "SIGTERM: the console was asked to terminate"}
if hasattr(signal, "SIGHUP"):  # not on Windows
    REASONS[signal.SIGHUP] = "SIGHUP: the console's terminal closed"


def is_hangup(signum: int) -> bool:
    return signum == getattr(signal, "SIGHUP", None)


def exit_code(signum: int) -> int:
    """The shell's convention for an end caused by a signal."""
    return 128 + signum


def record_stop_reason(run: Run, ended: Any, reason: str) -> None:
    """summary.json's `stopped`: why an interrupted run was stopped (a signal to the console).
    Written by the training thread once the engine has returned (the summary is final)."""
    if ended.status != RunStatus.INTERRUPTED:
        return
    summary = run.summary()
    if summary.get("status") == RunStatus.INTERRUPTED:
        run.write_summary({**summary, "stopped": reason})


def leave_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null: the terminal is gone."""
    with suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            with suppress(OSError):
                os.dup2(null, fd)
        os.close(null)


def install(on_signal: Callable[[int], None]) -> Callable[[], None]:
    """Call `on_signal(signum)` on the running event loop for each signal of REASONS. Returns
    the function that restores the previous handlers. A no-op off the main thread."""
    loop = asyncio.get_running_loop()

    def handler(signum: int, frame: object) -> None:
        if is_hangup(signum):
            leave_terminal()  # before the app's next write to the terminal
        loop.call_soon_threadsafe(on_signal, signum)

    return signals.install(REASONS, handler)


try:
    from textual.drivers.linux_driver import LinuxDriver
except ImportError:  # Windows: no SIGHUP either, Textual's own driver
    LinuxDriver = None  # type: ignore[assignment,misc]


if LinuxDriver is not None:

    class HangupSafeDriver(LinuxDriver):
        """LinuxDriver that outlives its terminal (see the module's docstring)."""

        def _writer_alive(self) -> bool:
            writer = self._writer_thread
            return writer is not None and writer.is_alive()

        def write(self, data: str) -> None:
            if self._writer_alive():
                super().write(data)

        def flush(self) -> None:
            if self._writer_alive():
                super().flush()

        def close(self) -> None:
            if self._writer_alive():
                super().close()

        def run_input_thread(self) -> None:
            try:
                super().run_input_thread()
            except OSError as exc:  # a hung-up terminal reads EIO: SIGHUP says the rest
                if exc.errno != errno.EIO:
                    raise

        def hang_up(self) -> None:
            """The terminal is gone: stop reading it."""
            self.exit_event.set()

else:
    HangupSafeDriver = None  # type: ignore[assignment,misc]
