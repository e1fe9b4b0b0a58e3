"""Quitting the console: a confirmed quit, and SIGHUP or SIGTERM taken as one (tui/hangup.py)."""

from __future__ import annotations

from typing import Any

from tui_trainer.tui import hangup
from tui_trainer.tui.screens.confirm import ConfirmScreen


class Quitting:
    """TrainerApp's quit: a run in training is stopped cleanly (interrupted, its checkpoint
    kept) before the app exits."""

    current_job: Any
    quitting: bool
    stop_reason: str
    exit_code_on_quit: int

    def _on_stop_signal(self, signum: int) -> None:
        """SIGHUP or SIGTERM: as a confirmed quit, with the reason in the run's summary."""
        if hangup.is_hangup(signum) and hasattr(self._driver, "hang_up"):
            self._driver.hang_up()  # the terminal is gone: stop reading it
        self.exit_code_on_quit = hangup.exit_code(signum)
        if self.current_job is None:
            self.exit(return_code=self.exit_code_on_quit)
            return
        if not self.quitting:
            self.stop_reason = hangup.REASONS[signum]
            self._stop_and_quit()

    def _stop_and_quit(self) -> None:
        self.quitting = True
        self.queue.clear()
        self.stop_current()

    async def action_quit(self) -> None:
        if self.current_job is None:
            self.exit()
            return
        if self.quitting:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._stop_and_quit()
                self.notify("Stopping the run, then quitting...")

        self.push_screen(
            ConfirmScreen(
                f"{self.current_job.label} is training. Stop it (it ends as interrupted, "
                "keeping its checkpoint) and quit?",
                "Stop and quit",
            ),
            answer,
        )
