"""Runs: every run folder in a sortable, filterable table; open, compare, watch or delete."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.store import Run, delete_run
from tui_trainer.tui.screens.compare import CompareScreen
from tui_trainer.tui.screens.confirm import ConfirmScreen
from tui_trainer.tui.screens.run_detail import RunDetailScreen
from tui_trainer.tui.views.runs_folder import RunsFolderView
from tui_trainer.tui.widgets.results_table import COLUMN_BY_KEY, ResultsTable, result_row


class ResultsView(RunsFolderView, Vertical):
    TITLE = "Runs"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("enter", "open", "Open", show=True),
        Binding("c", "compare", "Compare"),
        Binding("w", "watch", "Watch"),
        Binding("d", "delete", "Delete"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._signature: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="/ filter: words every shown row must contain (e.g. scratch completed)",
            id="filter",
            compact=True,
        )
        yield ResultsTable(id="table")
        yield Static("", id="results-status")

    @property
    def default_focus(self):
        return self.table

    def on_mount(self) -> None:
        self.watch_runs_folder()

    @property
    def table(self) -> ResultsTable:
        return self.query_one(ResultsTable)

    # --- keeping the table current ---------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def load_runs(self, runs: list[Run]) -> None:
        self.table.load([result_row(r) for r in runs])

    def _show_status(self) -> None:
        table = self.table
        shown, total = table.row_count, len(table.rows_data)  # drawn rows: the visible ones
        parts = [f"{shown} of {total} runs" if shown != total else f"{total} runs"]
        if table.marked:
            parts.append(f"{len(table.marked)} marked")
        if table.sort_by:
            label = COLUMN_BY_KEY[table.sort_by].label
            parts.append(f"sorted by {label} {'▼' if table.reverse else '▲'}")
        if not total:
            parts.append(f"no runs in {self.app.runs_dir} yet: start one on the Launch screen (1)")
        else:
            parts.append("enter open · space mark · s sort by column")
        self.query_one("#results-status", Static).update(" · ".join(parts))

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def on_results_table_view_changed(self, event: ResultsTable.ViewChanged) -> None:
        self._show_status()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        self.table.focus()

    # --- acting on runs ------------------------------------------------------------------------

    def _current_run(self) -> Run | None:
        run_id = self.table.current_id
        if run_id is None:
            self.notify("No run here yet.")
            return None
        return Run(self.app.runs_dir / run_id)

    @on(DataTable.CellSelected, "#table")
    def _cell_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        run = self._current_run()
        if run is not None:
            self.app.push_screen(RunDetailScreen(run))

    def action_compare(self) -> None:
        marked = [r for r in self.table.rows_data if r["id"] in self.table.marked]
        if len(marked) < 2:
            self.notify("Mark two or more runs with space, then press c.")
            return
        self.app.push_screen(CompareScreen([Run(self.app.runs_dir / r["id"]) for r in marked]))

    def action_watch(self) -> None:
        run = self._current_run()
        if run is not None:
            self.app.watch_run(run)

    def action_delete(self) -> None:
        run = self._current_run()
        if run is None:
            return
        if run.status() == RunStatus.RUNNING:
            self.notify(f"{run.id} is still training: stop it first.", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_run(run)
            except (UserError, OSError) as exc:
                self.notify(str(exc), title="Not deleted", severity="error")
            self.action_refresh()

        self.app.push_screen(
            ConfirmScreen(f"Delete {run.id}? Its folder and checkpoints are removed.", "Delete"),
            answer,
        )
