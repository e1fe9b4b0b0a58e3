"""One of the report's tables (`studies.report.Table`) as a DataTable whose cells know their run.

The cursor moves by cell: a result cell opens the run its number came from (in the backbone
table the two columns come from different runs), or the list of its runs when it is a group of
seeds; a row's leading cells open its first run. A cell reads as the report prints it:
"0.440 ± 0.060 (n=3)", one run as its number; beside it the paper's number and where ours lie.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from tui_trainer.runs.columns import report_label
from tui_trainer.studies.report import EMPTY, Cell, Table, cell_runs, joined_text
from tui_trainer.studies.report_render import paper_text


@dataclass(frozen=True)
class Layout:
    """Which cells a table shows: the report's numbers beside ours, the protocol column."""

    compare_paper: bool = False
    any_protocol: bool = False


def _cell(text: str) -> Text:
    """The report's cell text (studies/report.py formats it, as for `report`); empty: dim."""
    return Text(text, style="dim" if text == EMPTY else "")


class StudyTable(DataTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=True, **kwargs)
        self.table: Table | None = None
        self._cell_runs: list[list[str | None]] = []  # [row][column] -> run id
        self._cells: list[list[Cell | None]] = []  # [row][column] -> result cell (or None)

    def show(self, table: Table, layout: Layout) -> None:
        """Redraw from a freshly built table, keeping the cursor where it was."""
        keep = self.cursor_coordinate
        self.table = table
        spec = table.spec
        self.clear(columns=True)
        headers = list(spec.key_columns)
        for col in spec.columns:
            headers += [col.name, "paper"] if layout.compare_paper else [col.name]
        headers += ["RUN"] + (["PROTOCOL"] if layout.any_protocol else [])
        self.add_columns(*(report_label(h) for h in headers))
        self._cell_runs, self._cells = [], []
        for row in table.rows:
            first = next((c.run_id for c in row.cells if c.run_id), None)
            cells: list[Text] = [Text(k) for k in row.keys]
            runs: list[str | None] = [first] * len(row.keys)
            behind: list[Cell | None] = [None] * len(row.keys)
            for cell in row.cells:
                cells.append(_cell(cell.text()))
                runs.append(cell.run_id)
                behind.append(cell)
                if layout.compare_paper:
                    cells.append(Text(paper_text(cell), style="italic"))
                    runs.append(cell.run_id)
                    behind.append(cell)
            cells.append(_cell(joined_text([r for c in row.cells for r in cell_runs(c)])))
            runs.append(first)
            if layout.any_protocol:
                cells.append(_cell(joined_text([c.protocol for c in row.cells])))
                runs.append(first)
            self.add_row(*cells)
            self._cell_runs.append(runs)
            self._cells.append(behind + [None] * (len(runs) - len(behind)))
        if self.row_count:
            self.cursor_coordinate = self.validate_cursor_coordinate(keep)

    def run_at_cursor(self) -> str | None:
        """The id of the run behind the cell under the cursor (None for an empty cell)."""
        row, column = self.cursor_coordinate
        if not 0 <= row < len(self._cell_runs):
            return None
        runs = self._cell_runs[row]
        return runs[column] if 0 <= column < len(runs) else None

    def cell_at_cursor(self) -> Cell | None:
        """The result cell under the cursor (None on a row's leading or trailing cells)."""
        row, column = self.cursor_coordinate
        if not 0 <= row < len(self._cells):
            return None
        cells = self._cells[row]
        return cells[column] if 0 <= column < len(cells) else None

    def column_at_cursor(self) -> str:
        """The result column's name under the cursor, e.g. TEST_ACC ("" elsewhere)."""
        cell = self.cell_at_cursor()
        if cell is None or self.table is None:
            return ""
        row = self.table.rows[self.cursor_coordinate.row]
        names = [report_label(c.name) for c in self.table.spec.columns]
        return next(n for n, c in zip(names, row.cells, strict=True) if c is cell)

    def filled(self) -> tuple[int, int]:
        """(cells with a number, cells) over the table's result columns."""
        if self.table is None:
            return 0, 0
        cells = [c for row in self.table.rows for c in row.cells]
        return sum(c.value is not None for c in cells), len(cells)
