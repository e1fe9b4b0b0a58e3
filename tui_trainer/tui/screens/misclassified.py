"""A run's misclassified test images (what `show --misclassified` lists), filterable by class;
enter opens one in the augmentation preview, escape comes back to the list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from tui_trainer.runs.results import misclassified_images
from tui_trainer.runs.store import Run
from tui_trainer.tui.views.preview import PreviewScreen
from tui_trainer.tui.widgets.key_bar import KeyBar


@dataclass(frozen=True)
class Mistake:
    path: Path  # full path
    shown: str  # relative to the images folder, as stored
    true: str
    pred: str
    missing: bool  # the file is gone: the data folder moved since the run


def mistakes_of(results: dict[str, Any]) -> list[Mistake]:
    stored = results["misclassified"]
    return [
        Mistake(path, m["path"], true, pred, not path.is_file())
        for (path, true, pred), m in zip(misclassified_images(results), stored, strict=True)
    ]


def matches(mistake: Mistake, query: str) -> bool:
    """A class filter: the text is part of the true or the predicted class (any case)."""
    query = query.strip().lower()
    return not query or query in mistake.true.lower() or query in mistake.pred.lower()


class MisclassifiedScreen(Screen):
    BINDINGS = [
        Binding("escape,b", "back", "Back"),
        Binding("slash", "focus_filter", "Filter class"),
    ]

    def __init__(self, run: Run, results: dict[str, Any]) -> None:
        super().__init__()
        self.run = run
        self.images_dir = Path(results.get("images_dir", ""))
        self.total = sum(c["total"] for c in results["per_class"])
        self.mistakes = mistakes_of(results)
        self.shown: list[Mistake] = []
        self.any_missing = any(m.missing for m in self.mistakes)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="misclassified"):
            yield Input(
                placeholder="/ filter: part of a class name (true or predicted)",
                id="misclassified-filter",
                compact=True,
            )
            table = DataTable(id="misclassified-table", cursor_type="row")
            table.add_columns("Image", "True class", "Predicted")
            if self.any_missing:  # a column that would be empty otherwise
                table.add_column("File")
            yield table
            yield Static(id="misclassified-status")
        yield KeyBar()

    @property
    def default_focus(self) -> DataTable:
        return self.table

    @property
    def table(self) -> DataTable:
        return self.query_one("#misclassified-table", DataTable)

    def on_mount(self) -> None:
        self.sub_title = f"{self.run.id} · misclassified"
        self.table.focus()
        self._fill("")

    def _fill(self, query: str) -> None:
        self.shown = [m for m in self.mistakes if matches(m, query)]
        table = self.table
        table.clear()
        if self.any_missing:
            table.add_rows(
                (m.shown, m.true, m.pred, "missing" if m.missing else "") for m in self.shown
            )
        else:
            table.add_rows((m.shown, m.true, m.pred) for m in self.shown)
        parts = [f"{len(self.mistakes)} of {self.total} test images misclassified"]
        if len(self.shown) != len(self.mistakes):
            parts.insert(0, f"{len(self.shown)} shown")
        missing = sum(m.missing for m in self.mistakes)
        if missing:
            parts.append(f"{missing} files missing from {self.images_dir} (data moved?)")
        elif self.shown:
            parts.append("enter: open the image")
        self.query_one("#misclassified-status", Static).update(" · ".join(parts))
        self.set_class(bool(missing), "-missing")

    @on(Input.Changed, "#misclassified-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#misclassified-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    @on(DataTable.RowSelected, "#misclassified-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.shown):
            self.open_image(self.shown[event.cursor_row])

    def open_image(self, mistake: Mistake) -> None:
        if not mistake.path.is_file():
            self.notify(
                f"{mistake.path} is missing: the data folder moved since the run?",
                severity="warning",
            )
            return
        self.app.push_screen(PreviewScreen(mistake.path))

    def action_focus_filter(self) -> None:
        self.query_one("#misclassified-filter", Input).focus()

    def action_back(self) -> None:
        if isinstance(self.focused, Input):  # leave the filter first, like the Runs view
            self.table.focus()
        else:
            self.app.pop_screen()
