"""The results table: one row per run folder with the report's columns; sort, filter, mark.

Rows are plain dicts read from each run's config.json and summary.json; the table sorts and
filters its own list and redraws (hundreds of rows at most), keeping the cursor on its run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from tui_trainer.events import RunStatus
from tui_trainer.runs.columns import LEADING, RESULTS, label, table_keys
from tui_trainer.runs.store import Run


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    digits: int | None = None  # floats: fixed digits; None: general format


MARK = Column("mark", " ")
DIGITS = {key: 4 for key in RESULTS if key != "duration"}


def run_columns(keys: list[str]) -> tuple[Column, ...]:
    """The mark column, then one per key (`runs.columns.table_keys`), under the console's names."""
    return (MARK, *(Column(key, label(key), DIGITS.get(key)) for key in keys))


STATUS_STYLE = {
    RunStatus.COMPLETED: "green",
    RunStatus.RUNNING: "bold cyan",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.DIVERGED: "red",
    RunStatus.FAILED: "red",
    RunStatus.CRASHED: "red",
    RunStatus.STALE: "yellow",
    RunStatus.PRUNED: "magenta",  # a search stopped it: a result, not a failure
}


def result_row(run: Run) -> dict[str, Any]:
    """Every config key, the preset, the precision the run resolved to, status and results;
    `settings` names the keys the table may show as columns."""
    summary = run.summary()
    return row_of(run.id, run.meta(), summary, run.status(summary))


def row_of(
    run_id: str, meta: dict[str, Any], summary: dict[str, Any], status: str
) -> dict[str, Any]:
    """`result_row` from what was read already (the runs watcher's record of the run)."""
    config = meta.get("config", {})
    row: dict[str, Any] = {**config, "preset": meta.get("preset")}
    if meta.get("precision"):  # what `auto` became on the machine that trained it
        row["precision"] = meta["precision"]
    row["settings"] = [*config, "preset", "precision"]
    row["id"], row["status"] = run_id, status
    for key in RESULTS:
        row[key] = summary.get(key)
    row["duration"] = summary.get("seconds") if row["status"] != RunStatus.RUNNING else None
    return row


def format_cell(column: Column, value: Any) -> str:
    if value is None:
        return "-"
    if column.key == "duration":
        return f"{value:.0f}s" if value < 90 else f"{value / 60:.1f}m"
    if isinstance(value, float):
        return f"{value:.{column.digits}f}" if column.digits is not None else f"{value:g}"
    return str(value)


def sort_key(key: str, row: dict[str, Any]) -> tuple:
    """Numbers by value, text case-insensitively (missing values are kept apart, see below)."""
    value = row.get(key)
    value = getattr(value, "mean", value)  # a group's figure (a Spread) sorts by its mean
    if isinstance(value, int | float):
        return (0, value, "")
    return (1, 0, str(value).lower())


def matches(cells: str, text: str) -> bool:
    """Every word of the filter appears in the row's cells (case-insensitive)."""
    cells = cells.lower()
    return all(word in cells for word in text.lower().split())


class RowTable(DataTable):
    """Rows of plain dicts, one column each in `COLUMNS`, keyed by the row's `ID_KEY` value;
    sorted, filtered and marked here. `s` on a column (or a header click) sorts by it."""

    COLUMNS: tuple[Column, ...] = ()
    ID_KEY = "id"

    BINDINGS = [
        # Not in the footer (the status line under the table names them): room at 80 columns.
        Binding("s", "sort_column", "Sort", show=False),
        Binding("space", "toggle_mark", "Mark", show=False),
    ]

    class ViewChanged(Message):
        """Rows, sort, filter or marks changed: the screen's status line follows."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=True, **kwargs)
        self.fixed_columns = 2
        self.rows_data: list[dict[str, Any]] = []
        self.sort_by: str | None = None
        self.reverse = False
        self.filter_text = ""
        self.marked: set[str] = set()
        self.shown_columns: tuple[Column, ...] = self.COLUMNS

    def on_mount(self) -> None:
        self._draw()

    # --- data in -------------------------------------------------------------------------------

    def load(self, rows: list[dict[str, Any]]) -> None:
        self.rows_data = rows
        known = {r[self.ID_KEY] for r in rows}
        self.marked &= known
        self.shown_columns = self.pick_columns(rows)
        self._draw()

    def pick_columns(self, rows: list[dict[str, Any]]) -> tuple[Column, ...]:
        """The columns for these rows (all of COLUMNS here; the runs table picks)."""
        return self.COLUMNS

    def column_label(self, key: str) -> str:
        """What the status line calls a column: the mark column has no header of its own."""
        if key == "mark":
            return "marked"
        return next((c.label for c in self.shown_columns if c.key == key), key)

    def sort_rows(self, key: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self.reverse if key == self.sort_by else False
        self.sort_by, self.reverse = key, reverse
        self._draw()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._draw()

    # --- what the user picked ------------------------------------------------------------------

    @property
    def current_id(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def visible_rows(self) -> list[dict[str, Any]]:
        rows = [r for r in self.rows_data if matches(self._row_text(r), self.filter_text)]
        if self.sort_by:
            # Runs without the value (still running, failed) stay last in both directions.
            if self.sort_by == "mark":  # marked rows first (last, reversed)
                rows.sort(key=lambda r: r[self.ID_KEY] not in self.marked, reverse=self.reverse)
                return rows
            present = [r for r in rows if r.get(self.sort_by) is not None]
            missing = [r for r in rows if r.get(self.sort_by) is None]
            present.sort(key=lambda r: sort_key(self.sort_by, r), reverse=self.reverse)
            rows = present + missing
        return rows

    def action_sort_column(self) -> None:
        self.sort_rows(self.shown_columns[self.cursor_column].key)

    def action_toggle_mark(self) -> None:
        run_id = self.current_id
        if run_id is None:
            return
        self.marked.symmetric_difference_update({run_id})
        self.update_cell(run_id, "mark", self._mark_cell(run_id))  # one cell, not a redraw
        self.post_message(self.ViewChanged())

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_rows(str(event.column_key.value))

    # --- drawing -------------------------------------------------------------------------------

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        keep_id, keep_column = self.current_id, self.cursor_column
        self.clear(columns=True)
        for column in self.shown_columns:
            arrow = ""
            if column.key == self.sort_by:
                arrow = " ▼" if self.reverse else " ▲"
            width = self._width(column, len(arrow))
            self.add_column(column.label + arrow, key=column.key, width=width)
        for row in self.visible_rows():
            self.add_row(*self._cells(row), key=row[self.ID_KEY])
        if keep_id is not None and keep_id in self.rows:
            self.move_cursor(row=self.get_row_index(keep_id), column=keep_column, animate=False)
        else:
            self.move_cursor(column=keep_column, animate=False)
        self.post_message(self.ViewChanged())

    def _width(self, column: Column, arrow: int) -> int:
        """Wide enough for the header and every row, shown or filtered out: the layout stays
        put while a filter is typed."""
        cells = (cell_len(self.cell_text(column, row)) for row in self.rows_data)
        return max(len(column.label) + arrow, *cells, 1) if column.key != "mark" else 1 + arrow

    def _mark_cell(self, run_id: str) -> Text | str:
        return Text("●", style="bold magenta") if run_id in self.marked else ""

    def cell_text(self, column: Column, row: dict[str, Any]) -> str:
        """A cell's text (also what the filter searches)."""
        return format_cell(column, row.get(column.key))

    def _row_text(self, row: dict[str, Any]) -> str:
        return " ".join(self.cell_text(c, row) for c in self.shown_columns if c.key != "mark")

    def _cells(self, row: dict[str, Any]) -> list[Text | str]:
        mark = self._mark_cell(row[self.ID_KEY])
        return [mark if c.key == "mark" else self.cell_text(c, row) for c in self.shown_columns]


class ResultsTable(RowTable):
    """Runs as rows, keyed by run id: id and status, the settings that tell the runs apart,
    then the results (`runs.columns`); `all_settings` shows every setting."""

    COLUMNS = run_columns(table_keys([], []))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fixed_columns = 3  # mark, id and status stay in sight while scrolling right
        self.all_settings = False

    def pick_columns(self, rows: list[dict[str, Any]]) -> tuple[Column, ...]:
        settings = list(dict.fromkeys(key for row in rows for key in row.get("settings", ())))
        candidates = run_columns([*LEADING, *settings, *RESULTS])
        padding = 2 * self.cell_padding
        widths = {c.key: self._width(c, 0) + padding for c in candidates}
        # the room right of the mark column, less a vertical scrollbar's
        room = self.size.width - (1 + padding) - self.styles.scrollbar_size_vertical
        keys = table_keys(rows, settings, self.all_settings, max(room, 0), widths)
        return run_columns(keys)

    def cell_text(self, column: Column, row: dict[str, Any]) -> str:
        if column.key == "classes" and row.get("classes") == 0:
            return "all"  # the config's 0: every class of the dataset
        return super().cell_text(column, row)

    def on_resize(self) -> None:
        """Which settings fit beside the accuracies depends on the width."""
        columns = self.pick_columns(self.rows_data)
        if columns != self.shown_columns:
            self.shown_columns = columns
            self._draw()

    def show_all_settings(self, everything: bool) -> None:
        self.all_settings = everything
        self.load(self.rows_data)

    def _row_text(self, row: dict[str, Any]) -> str:
        """The filter finds a run by any setting, shown as a column or not."""
        settings = " ".join(format_cell(Column(k, k), row.get(k)) for k in row.get("settings", ()))
        return f"{super()._row_text(row)} {settings}"

    def _cells(self, row: dict[str, Any]) -> list[Text | str]:
        cells = super()._cells(row)
        style = STATUS_STYLE.get(row["status"], "")
        keys = [c.key for c in self.shown_columns]
        for key in ("status", "id"):
            cells[keys.index(key)] = Text(row[key], style=style)
        return cells
