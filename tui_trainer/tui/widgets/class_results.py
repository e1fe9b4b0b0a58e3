"""A run's per-class test results in the run detail: the worst classes beside the most
confused class pairs (what `tui-trainer show` prints), or one line saying why there are none."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from tui_trainer.events import RunStatus
from tui_trainer.runs.results import confused_pairs, worst_classes
from tui_trainer.tui.live import PREPARING

SHOWN = 10  # rows per table, as `show` prints


class ListTable(DataTable, can_focus=False):
    """A read-only table: no cursor, no focus, so keys keep scrolling the detail."""

    DEFAULT_CSS = "ListTable { height: auto; }"

    def __init__(self, *columns: str, **kwargs: Any) -> None:
        super().__init__(cursor_type="none", show_cursor=False, **kwargs)
        self.add_columns(*columns)


def _number(value: str) -> Text:
    return Text(value, justify="right")


def missing_note(status: str) -> str:
    """Why a run has no test_results.json."""
    if status in (RunStatus.RUNNING, PREPARING):
        return "they are stored when the run completes"
    if status == RunStatus.COMPLETED:
        return "the run predates them"
    return f"only completed runs store them (this one {status})"


class ClassResults(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="perclass-title")
        with Horizontal(id="perclass-tables"):
            yield ListTable("Worst class", "Correct", "Acc", id="worst-classes")
            yield ListTable("True class", "Predicted", "Images", id="confused-pairs")

    def show(self, results: dict[str, Any] | None, status: str) -> None:
        title = self.query_one("#perclass-title", Static)
        self.set_class(results is None, "-none")
        if results is None:
            title.update(f"[b]per-class[/b]  none: {missing_note(status)}")
            return
        total = sum(c["total"] for c in results["per_class"])
        wrong = len(results["misclassified"])
        title.update(
            f"[b]per-class[/b]  {len(results['classes'])} classes · {wrong} of {total} "
            "test images misclassified (m lists them)"
        )
        worst = self.query_one("#worst-classes", ListTable)
        worst.clear()
        worst.add_rows(
            (c.name, _number(f"{c.correct}/{c.total}"), _number(f"{c.accuracy:.3f}"))
            for c in worst_classes(results, SHOWN)
        )
        pairs = self.query_one("#confused-pairs", ListTable)
        pairs.clear()
        pairs.add_rows(
            (true, pred, _number(str(count)))
            for true, pred, count in confused_pairs(results, SHOWN)
        )
