"""One run from its folder: config, summary, curves and per-class test results (what
`tui-trainer show` prints); `m` lists the misclassified test images; `r` resumes a run that
stopped before its end (tui/resume.py)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from tui_trainer.runs.display import format_number
from tui_trainer.runs.results import load_test_results
from tui_trainer.runs.status import RESUMABLE
from tui_trainer.runs.store import SUMMARY_FIELDS, Run
from tui_trainer.tui.live import format_seconds
from tui_trainer.tui.resume import ask_resume
from tui_trainer.tui.screens.misclassified import MisclassifiedScreen
from tui_trainer.tui.widgets.class_results import ClassResults, missing_note
from tui_trainer.tui.widgets.key_bar import KeyBar
from tui_trainer.tui.widgets.plots import EpochPlot, StepLossPlot


def describe_config(config: dict[str, Any]) -> str:
    return "  ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()
    )


def describe_summary(summary: dict[str, Any]) -> str:
    parts = [
        f"{k}={format_seconds(summary[k]) if k == 'seconds' else format_number(summary[k], 4)}"
        for k in SUMMARY_FIELDS
        if k in summary
    ]
    text = "  ".join(parts) or "no results yet"
    if summary.get("message"):
        text += f"\n{summary['message']}"
    return text


class RunDetailScreen(Screen):
    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("w", "watch", "Watch"),
        Binding("m", "misclassified", "Misclassified"),
        Binding("r", "resume", "Resume"),
    ]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.results: dict[str, Any] | None = None
        self.status = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static(id="detail-title")
            yield Static(id="detail-config", classes="detail-text")
            yield Static(id="detail-summary", classes="detail-text")
            yield StepLossPlot(id="detail-steps", classes="detail-plot")
            with Horizontal(classes="detail-plot"):
                yield EpochPlot("acc", id="detail-acc")
                yield EpochPlot("loss", id="detail-loss")
            # after the curves: the first screenful stays config, summary and training loss
            yield ClassResults(id="detail-perclass")
        yield KeyBar()

    def on_mount(self) -> None:
        run = self.run
        meta, summary = run.meta(), run.summary()
        steps, epochs = run.curves()
        self.sub_title = f"Run {run.id}"
        status = self.status = run.status(summary)
        title = self.query_one("#detail-title", Static)
        title.update(f"[b]{escape(run.id)}[/b]  preset={meta.get('preset')}  status={status}")
        title.add_class(f"-{status}")
        config_text = describe_config(meta.get("config", {}))
        self.query_one("#detail-config", Static).update(f"[b]config[/b]  {escape(config_text)}")
        summary_text = describe_summary(summary)
        self.query_one("#detail-summary", Static).update(f"[b]summary[/b]  {escape(summary_text)}")
        self.query_one(StepLossPlot).replot(steps)
        self.query_one("#detail-acc", EpochPlot).replot(epochs)
        self.query_one("#detail-loss", EpochPlot).replot(epochs)
        self.results = load_test_results(run.path)
        self.query_one(ClassResults).show(self.results, status)
        self.refresh_bindings()  # Resume shows for a run that can continue

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.status in RESUMABLE if action == "resume" else True

    def run_at_hand(self) -> Run:
        return self.run

    def action_resume(self) -> None:
        ask_resume(self.app, self.run)

    def action_watch(self) -> None:
        self.app.show_run(self.run)

    def action_misclassified(self) -> None:
        if self.results is None:
            note = missing_note(self.status)
            self.notify(f"{self.run.id} has no per-class test results: {note}.")
            return
        self.app.push_screen(MisclassifiedScreen(self.run, self.results))
