"""The LR range test of the Launch form's config: it runs in a thread worker (the decode first,
then the steps), the curve grows as it goes, and `u` (or the button) closes the screen with the
suggestion for the form's LR field. Escape stops the test and closes with nothing.

The curve is saved under `<runs dir>/.lr-find/` as `tui-trainer lr-find` saves it."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui_trainer.config import RunConfig
from tui_trainer.errors import Stopped, UserError
from tui_trainer.events import Log
from tui_trainer.train import lr_curve
from tui_trainer.tui.widgets.key_bar import KeyBar
from tui_trainer.tui.widgets.lr_plot import LrCurvePlot

REPLOT_EVERY = 5  # steps between redraws of the growing curve


class LrFindScreen(ModalScreen[float | None]):
    """Dismissed with the suggested LR (`u`), or None (escape)."""

    BINDINGS = [
        Binding("u", "use", "Use suggestion"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(
        self,
        config: RunConfig,
        preset: str,
        data_dir: Path,
        runs_dir: Path,
        options: lr_curve.LrFindOptions | None = None,
        result: lr_curve.LrFindResult | None = None,
    ) -> None:
        """With `result` (a curve already measured) the screen shows it and runs nothing."""
        super().__init__()
        self.config, self.preset = config, preset
        self.data_dir, self.runs_dir = data_dir, runs_dir
        self.options = options or lr_curve.LrFindOptions()
        self.stop = threading.Event()
        self.result: lr_curve.LrFindResult | None = None
        self._given = result
        self._lrs: list[float] = []
        self._smoothed: list[float] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="lr-find-box"):
            yield Static(f"LR range test of {self.preset}", id="lr-find-title")
            yield Static("starting...", id="lr-find-status")
            yield LrCurvePlot(id="lr-find-plot")
            with Horizontal(id="lr-find-buttons"):
                yield Button(
                    "Use suggestion (u)", id="lr-find-use", variant="success", compact=True
                )
                yield Button("Close (esc)", id="lr-find-close", compact=True)
        yield KeyBar()

    def on_mount(self) -> None:
        if self._given is not None:
            self._finished(self._given, None)
            return
        self.query_one("#lr-find-use", Button).disabled = True
        self.set_class(True, "-running")
        self._run()

    @work(thread=True, exclusive=True, group="lr-find", exit_on_error=False)
    def _run(self) -> None:
        from tui_trainer.train.lr_find import find_lr
        from tui_trainer.train.preparation import prepare

        try:
            prep = prepare(self.config, self.data_dir, self._event, self.stop)
            result = find_lr(prep, self.options, self._event, self.stop)
            path = lr_curve.save_result(result, self.runs_dir, self.preset)
        except Stopped:
            return
        except (UserError, OSError) as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        except Exception as exc:  # out of memory, a broken model: say so, not spin forever
            self.app.call_from_thread(self._failed, f"the range test failed: {exc}")
            return
        self.app.call_from_thread(self._finished, result, path)

    def _event(self, event: object) -> None:
        """Called in the worker thread: progress to the screen, a redraw every few steps."""
        if self.stop.is_set():
            return
        if isinstance(event, Log):
            self.app.call_from_thread(self._status, event.message)
        elif isinstance(event, lr_curve.LrFindStep):
            self.app.call_from_thread(self._step, event)

    def _status(self, text: str, markup: str = "") -> None:
        """Plain `text` (an error, a log line: brackets are not markup), or `markup`."""
        if self.stop.is_set():  # closed: calls queued by the worker before it saw the stop
            return
        self.query_one("#lr-find-status", Static).update(markup or escape(text))

    def _step(self, event: lr_curve.LrFindStep) -> None:
        if self.stop.is_set():
            return
        self._lrs.append(event.lr)
        self._smoothed.append(event.smoothed)
        self._status(
            f"step {event.step}/{event.steps}  lr {lr_curve.format_lr(event.lr)}  "
            f"smoothed loss {event.smoothed:.4f}"
        )
        if event.step % REPLOT_EVERY == 0:
            self.query_one(LrCurvePlot).replot(self._lrs, self._smoothed)

    def _finished(self, result: lr_curve.LrFindResult, path: Path | None) -> None:
        if self.stop.is_set():  # closed while the last step ran
            return
        self.result = result
        ending = "stopped early: the loss diverged" if result.stopped_early else "full range"
        self._status(
            "",
            f"suggested lr [b]{lr_curve.format_lr(result.suggestion)}[/b] ({result.rule}, "
            f"{result.steps_run} steps, {ending})" + (f"  saved to {path.name}" if path else ""),
        )
        self.query_one(LrCurvePlot).replot(result.lrs, result.smoothed, result.suggestion)
        use = self.query_one("#lr-find-use", Button)
        use.disabled = False
        use.focus()
        self.set_class(False, "-running")
        self.set_class(True, "-done")

    def _failed(self, message: str) -> None:
        if self.stop.is_set():
            return
        self._status(message)
        self.set_class(False, "-running")
        self.set_class(True, "-failed")

    @on(Button.Pressed, "#lr-find-use")
    def action_use(self) -> None:
        if self.result is None:
            self.notify("The range test is still running: wait for its suggestion.")
            return
        self.dismiss(self.result.suggestion)

    @on(Button.Pressed, "#lr-find-close")
    def action_close(self) -> None:
        self.stop.set()
        self.dismiss(None)
