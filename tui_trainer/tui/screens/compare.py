"""Compare: val accuracy and val loss of the marked runs overlaid, one labelled curve each."""

from __future__ import annotations

import re

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Header, Static

from tui_trainer.runs.store import Run
from tui_trainer.tui.widgets.key_bar import KeyBar
from tui_trainer.tui.widgets.plots import ComparePlot


def curve_label(run: Run) -> str:
    """Short legend text: the id without its date, plus the LR (what sweeps vary most)."""
    label = re.sub(r"^\d{8}-", "", run.id)
    lr = run.config().get("lr")
    return f"{label} lr={lr:g}" if isinstance(lr, float | int) else label


class CompareScreen(Screen):
    BINDINGS = [Binding("escape,b", "app.pop_screen", "Back")]

    def __init__(self, runs: list[Run]) -> None:
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="compare"):
            yield Static(id="compare-runs")
            yield ComparePlot("val_acc", id="compare-acc")
            yield ComparePlot("val_loss", id="compare-loss")
        yield KeyBar()

    def on_mount(self) -> None:
        self.sub_title = f"Compare {len(self.runs)} runs"
        curves = {}
        lines = []
        for run in self.runs:
            label = curve_label(run)
            label = run.id if label in curves else label
            curves[label] = run.epochs()
            summary = run.summary()
            status = run.status(summary)
            numbers = "  ".join(
                f"{key} {summary[key]:.3f}"
                for key in ("max_val_acc", "test_acc")
                if isinstance(summary.get(key), float)
            )
            lines.append(f"[b]{escape(label)}[/b]  {status}  {numbers}")
        self.query_one("#compare-runs", Static).update("\n".join(lines))
        self.query_one("#compare-acc", ComparePlot).replot(curves)
        self.query_one("#compare-loss", ComparePlot).replot(curves)
