"""The runs behind one cell of the Studies view: one row per seed (its run, status, figure).

A cell over several seeds shows their mean ± std; this lists what it is made of, so a failed or
still-running seed, or one far from the others, is in plain sight. Enter opens a run as a
one-run cell does; escape goes back to the table.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui_trainer.events import RunStatus
from tui_trainer.runs.store import Run
from tui_trainer.studies.report import Cell, value_text
from tui_trainer.tui.screens.run_detail import RunDetailScreen

STATUS_STYLES = {
    RunStatus.COMPLETED: "green",
    RunStatus.RUNNING: "cyan",
    RunStatus.FAILED: "red",
    RunStatus.CRASHED: "red",
    RunStatus.DIVERGED: "red",
}


def where_text(cell: Cell) -> str:
    """ "paper 0.49: ours within (0.380 to 0.500)", or "" before any figure of ours."""
    where = cell.against_paper()
    if where is None:
        return ""
    low, high = value_text(cell.spread.low), value_text(cell.spread.high)
    return f"paper {cell.paper}: ours {where} ({low} to {high})"


class CellRunsScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back"),
    ]

    def __init__(self, cell: Cell, title: str, column: str, runs_dir, compare_paper: bool) -> None:
        super().__init__()
        self.cell, self.title_text, self.column = cell, title, column
        self.runs_dir, self.compare_paper = runs_dir, compare_paper

    def compose(self) -> ComposeResult:
        cell = self.cell
        with Vertical(id="cell-runs-box"):
            yield Static(self.title_text, id="cell-runs-title")
            lines = [f"{self.column}: {cell.text()}"]
            if self.compare_paper and where_text(cell):
                lines.append(where_text(cell))
            if cell.precision:
                lines.append(f"precision {cell.precision}")
            yield Static(" · ".join(lines), id="cell-runs-figure")
            table = DataTable(id="cell-runs", cursor_type="row", zebra_stripes=True)
            table.add_columns("Run", "Seed", "Status", self.column)
            for r in cell.runs:
                status = Text(str(r.status), style=STATUS_STYLES.get(r.status, "yellow"))
                table.add_row(r.run_id, str(r.seed), status, value_text(r.value), key=r.run_id)
            yield table
            yield Static("enter: open the run · escape: back", id="cell-runs-keys")

    def on_mount(self) -> None:
        self.query_one("#cell-runs", DataTable).focus()

    def run_at_cursor(self) -> str | None:
        table = self.query_one("#cell-runs", DataTable)
        row = table.cursor_row
        runs = self.cell.runs
        return runs[row].run_id if 0 <= row < len(runs) else None

    @on(DataTable.RowSelected, "#cell-runs")
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        run_id = self.run_at_cursor()
        if run_id is None:
            return
        run = Run(self.runs_dir / run_id)
        if not run.path.is_dir():
            self.notify(f"{run_id} is gone from {self.runs_dir}.", severity="warning")
            return
        self.app.push_screen(RunDetailScreen(run))
