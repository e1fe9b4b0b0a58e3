"""Runs: every run folder in a sortable, filterable table; open, compare, watch or delete.

`g` swaps in the grouped table (one row per seed group: runs that differ only by seed); each
table keeps its own sort and marks, the filter applies to both, and the view's `-grouped`
class says which one shows. Enter on a group compares its runs as a band."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.groups import SeedGroup, group_by_seed
from tui_trainer.runs.store import Run, delete_run
from tui_trainer.tui.resume import ask_resume
from tui_trainer.tui.run_records import RunRecord
from tui_trainer.tui.screens.compare import CompareScreen
from tui_trainer.tui.screens.confirm import ConfirmScreen
from tui_trainer.tui.screens.run_detail import RunDetailScreen
from tui_trainer.tui.views.runs_folder import RunsFolderView
from tui_trainer.tui.widgets.group_table import GroupTable
from tui_trainer.tui.widgets.results_table import ResultsTable, RowTable, row_of


# r resumes the run at the cursor (tui/resume.py); refreshing by hand is rarely needed (the
# view watches the runs folder), so it moved to ctrl+r.
class ResultsView(RunsFolderView, Vertical):
    TITLE = "Runs"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("enter", "open", "Open", show=True),
        Binding("c", "compare", "Compare"),
        Binding("g", "toggle_groups", "Seeds"),
        Binding("a", "all_settings", "All columns", show=False),
        Binding("w", "watch", "Watch"),
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runs: list[Run] = []
        self._statuses: dict[str, str] = {}  # run id -> status, as the watcher read it
        self._groups_stale = True  # the grouped table is built when shown

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="/ filter: words every shown row must contain (e.g. scratch completed)",
            id="filter",
            compact=True,
        )
        yield ResultsTable(id="table")
        yield GroupTable(id="groups")
        yield Static("", id="results-status")

    @property
    def default_focus(self):
        return self.shown_table

    def on_mount(self) -> None:
        self.follow_runs_folder()

    @property
    def table(self) -> ResultsTable:
        return self.query_one("#table", ResultsTable)

    @property
    def group_table(self) -> GroupTable:
        return self.query_one("#groups", GroupTable)

    @property
    def grouped(self) -> bool:
        return self.has_class("-grouped")

    @property
    def shown_table(self) -> RowTable:
        return self.group_table if self.grouped else self.table

    # --- keeping the table current ---------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def load_runs(self, records: tuple[RunRecord, ...]) -> None:
        self._runs = [record.run for record in records]
        self._statuses = {record.id: record.status for record in records}
        self.table.load([row_of(r.id, r.meta, r.summary, r.status) for r in records])
        self._groups_stale = True
        if self.grouped:
            self._load_groups()

    def action_all_settings(self) -> None:
        """Every setting as a column, or (again) only those that tell the runs apart."""
        everything = not self.table.all_settings
        self.table.show_all_settings(everything)
        self.notify("All settings shown." if everything else "Settings that differ only.")

    def _load_groups(self) -> None:
        self.group_table.load_groups(group_by_seed(self._runs))
        self._groups_stale = False

    def action_toggle_groups(self) -> None:
        if not self.grouped and self._groups_stale:
            self._load_groups()
        self.toggle_class("-grouped")
        self.call_after_refresh(self.shown_table.focus)  # once the styles show it
        self._show_status()

    def _show_status(self) -> None:
        table = self.shown_table
        shown, total = table.row_count, len(table.rows_data)  # drawn rows: the visible ones
        noun = "seed groups" if self.grouped else "runs"
        parts = [f"{shown} of {total} {noun}" if shown != total else f"{total} {noun}"]
        if self.grouped:
            parts[0] += f" of {len(self._runs)} runs"
        if table.marked:
            parts.append(f"{len(table.marked)} marked")
        if table.sort_by:
            label = table.column_label(table.sort_by)
            parts.append(f"sorted by {label} {'▼' if table.reverse else '▲'}")
        if not total:
            parts.append(f"no runs in {self.app.runs_dir} yet: start one on the Launch screen (1)")
        elif self.grouped:
            parts.append("enter compare seeds · space mark · g runs")
        else:
            parts.append("enter open · space mark · s sort · a all columns")
        self.query_one("#results-status", Static).update(" · ".join(parts))

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)
        self.group_table.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.shown_table.focus()

    def on_row_table_view_changed(self, event: RowTable.ViewChanged) -> None:
        self._show_status()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        self.shown_table.focus()

    # --- acting on runs ------------------------------------------------------------------------

    def _current_run(self) -> Run | None:
        if self.grouped:
            group = self._current_group()
            return None if group is None else group.runs[-1]  # its newest run
        run_id = self.table.current_id
        if run_id is None:
            self.notify("No run here yet.")
            return None
        return Run(self.app.runs_dir / run_id)

    def _current_group(self) -> SeedGroup | None:
        group = self.group_table.current_group
        if group is None:
            self.notify("No seed group here yet.")
        return group

    @on(DataTable.CellSelected, "#table, #groups")
    def _cell_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        if self.grouped:
            group = self._current_group()
            if group is not None and len(group.runs) > 1:
                self.app.push_screen(CompareScreen(groups=[group]))
                return
        run = self._current_run()  # a group of one run opens that run
        if run is not None:
            self.app.push_screen(RunDetailScreen(run))

    def action_compare(self) -> None:
        if self.grouped:
            groups = self.group_table.marked_groups()
            if len(groups) < 2:
                self.notify("Mark two or more seed groups with space, then press c.")
                return
            self.app.push_screen(CompareScreen(groups=groups))
            return
        marked = [r for r in self.table.rows_data if r["id"] in self.table.marked]
        if len(marked) < 2:
            self.notify("Mark two or more runs with space, then press c.")
            return
        self.app.push_screen(CompareScreen([Run(self.app.runs_dir / r["id"]) for r in marked]))

    def action_watch(self) -> None:
        run = self._current_run()
        if run is not None:
            self.app.show_run(run)

    def run_at_hand(self) -> Run | None:
        """The run at the cursor of the runs table (none in the grouped one)."""
        run_id = None if self.grouped else self.table.current_id
        return Run(self.app.runs_dir / run_id) if run_id else None

    def action_resume(self) -> None:
        run = self._current_run()
        if run is not None:
            ask_resume(self.app, run)

    def action_delete(self) -> None:
        if self.grouped:
            self.notify("Delete runs one at a time: g shows the runs.", severity="warning")
            return
        run = self._current_run()
        if run is None:
            return
        if self._statuses.get(run.id) == RunStatus.RUNNING:
            self.notify(f"{run.id} is still training: stop it first.", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_run(run)
            except (UserError, OSError) as exc:
                self.notify(str(exc), title="Not deleted", severity="error")
            else:  # gone from the table now, not at the watcher's next scan
                self.load_runs(tuple(r for r in self.app.runs_snapshot.records if r.id != run.id))
            self.app.watcher.rescan()

        self.app.push_screen(
            ConfirmScreen(f"Delete {run.id}? Its folder and checkpoints are removed.", "Delete"),
            answer,
        )
