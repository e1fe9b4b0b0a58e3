"""Studies: the report's tables from the runs folder, one tab per study (`tui-trainer report`).

Each cell is the group of completed runs matching its row that differ only by seed, as
mean ± std (n) (studies/report.py decides, as for the CLI); enter on a cell of one run opens that
run, on a cell of several seeds the list of its runs (screens/cell_runs.py). The report is built
in a thread worker (it reads every completed run's files) when the view is first shown and when a
run folder changes while it is on screen, never in the background; the tables are redrawn when
it lands. `p` redraws the report at hand; `a` builds it again.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from tui_trainer.runs.store import Run
from tui_trainer.studies.report import TABLES, Report, build_report
from tui_trainer.tui.run_records import RunRecord
from tui_trainer.tui.screens.cell_runs import CellRunsScreen
from tui_trainer.tui.screens.run_detail import RunDetailScreen
from tui_trainer.tui.views.runs_folder import RunsFolderView
from tui_trainer.tui.widgets.study_table import Layout, StudyTable

TAB_TITLES = {
    "scratch": "Scratch",
    "finetune": "Fine-tune LR",
    "policies": "Policies",
    "augmentation": "Augmentation",
    "backbones": "Backbones",
}
# The sweep whose members fill a study's rows (report-study fills every table).
STUDY_SWEEPS = {"scratch": "scratch-lr-sweep", "finetune": "finetune-lr-sweep"}
ALL_STUDIES_SWEEP = "report-study"


class StudiesView(RunsFolderView, Vertical):
    TITLE = "Studies"
    BINDINGS = [
        Binding("enter", "open", "Open run", show=True),
        Binding("p", "toggle_paper", "Paper"),
        Binding("a", "toggle_protocol", "Any protocol"),
        Binding("left_square_bracket", "tab(-1)", "Prev tab", show=False),
        Binding("right_square_bracket", "tab(1)", "Next tab", show=False),
        Binding("s", "sweep", "Sweep"),
        Binding("r", "refresh", "Refresh", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout_options = Layout()
        self.report: Report | None = None  # the last one built
        self.builds = 0  # reports asked for; one landing from an earlier ask is dropped

    def compose(self) -> ComposeResult:
        yield Static("", id="studies-scope")
        with TabbedContent(id="study-tabs"):
            for spec in TABLES:
                with TabPane(TAB_TITLES.get(spec.key, spec.key), id=f"tab-{spec.key}"):
                    yield Static(spec.title, classes="study-title")
                    yield StudyTable(id=f"study-{spec.key}", classes="study-table")
        yield Static("", id="studies-status")

    @property
    def default_focus(self):
        return self.current_table

    def on_mount(self) -> None:
        self.follow_runs_folder()

    @property
    def current_key(self) -> str:
        active = self.query_one(TabbedContent).active or f"tab-{TABLES[0].key}"
        return active.removeprefix("tab-")

    @property
    def current_table(self) -> StudyTable:
        return self.query_one(f"#study-{self.current_key}", StudyTable)

    # --- keeping the tables current ------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def load_runs(self, records: tuple[RunRecord, ...]) -> None:
        self.builds += 1
        runs = [record.run for record in records]
        self._build(self.builds, runs, self.layout_options.any_protocol)

    @work(thread=True, group="studies-report", exit_on_error=False)
    def _build(self, build: int, runs: list[Run], any_protocol: bool) -> None:
        report = build_report(self.app.runs_dir, any_protocol, runs)
        self.app.call_from_thread(self._built, build, report)

    def _built(self, build: int, report: Report) -> None:
        if build == self.builds:
            self.report = report
            self._draw()

    def _draw(self) -> None:
        if self.report is None:
            return
        for table in self.report.tables:
            self.query_one(f"#study-{table.spec.key}", StudyTable).show(table, self.layout_options)
        self._show_scope()
        self._show_status()

    def _show_scope(self) -> None:
        if self.layout_options.any_protocol:
            scope = "runs of any protocol (full protocol wins)"
        else:
            scope = "full-protocol runs only (a: quick runs too)"
        if self.layout_options.compare_paper:
            paper = "paper: ours below / within / above it"
        else:
            paper = "p: the report's numbers"
        parts = ["Each cell: mean ± std (n seeds)", scope, paper]
        self.query_one("#studies-scope", Static).update(" · ".join(p for p in parts if p))

    def _show_status(self) -> None:
        table = self.current_table
        filled, total = table.filled()
        sweep = STUDY_SWEEPS.get(self.current_key, ALL_STUDIES_SWEEP)
        hint = f"s: sweep {sweep} fills it" if filled < total else "all filled"
        status = self.query_one("#studies-status", Static)
        status.update(f"{filled} of {total} cells · {hint} · enter: a cell's runs · [ ]: tabs")
        status.set_class(filled == 0, "-empty")

    @on(TabbedContent.TabActivated, "#study-tabs")
    def _tab_changed(self) -> None:
        self._show_status()
        self.current_table.focus()

    # --- actions ------------------------------------------------------------------------------

    def action_tab(self, delta: int) -> None:
        keys = [f"tab-{spec.key}" for spec in TABLES]
        tabs = self.query_one(TabbedContent)
        tabs.active = keys[(keys.index(tabs.active) + delta) % len(keys)]

    def action_toggle_paper(self) -> None:
        old = self.layout_options
        self.layout_options = Layout(not old.compare_paper, old.any_protocol)
        self._draw()  # the same report, beside the paper's numbers or not

    def action_toggle_protocol(self) -> None:
        old = self.layout_options
        self.layout_options = Layout(old.compare_paper, not old.any_protocol)
        self.action_refresh()

    @on(DataTable.CellSelected, ".study-table")
    def _cell_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        table = self.current_table
        cell = table.cell_at_cursor()
        if cell is not None and len(cell.runs) > 1:
            self._open_cell(table, cell)
            return
        run_id = table.run_at_cursor()
        if run_id is None:
            self.notify("No run behind this cell yet: s shows the sweep that fills it.")
            return
        run = Run(self.app.runs_dir / run_id)
        if not run.path.is_dir():
            self.notify(f"{run_id} is gone from {self.app.runs_dir}.", severity="warning")
            self.action_refresh()
            return
        self.app.push_screen(RunDetailScreen(run))

    def action_sweep(self) -> None:
        self.app.show_sweep(STUDY_SWEEPS.get(self.current_key, ALL_STUDIES_SWEEP))

    def _open_cell(self, table: StudyTable, cell) -> None:
        """A cell over several seeds: the list of its runs, each opening as a one-run cell."""
        if table.table is None:
            return
        row = table.table.rows[table.cursor_coordinate.row]
        title = f"{table.table.spec.title} · {row.label(table.table.spec.key_columns)}"
        column = table.column_at_cursor()
        compare = self.layout_options.compare_paper
        self.app.push_screen(CellRunsScreen(cell, title, column, self.app.runs_dir, compare))
