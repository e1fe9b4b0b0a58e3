"""Tables that fit the console's width without cutting a cell: where a table is too wide, its
least needed columns are left out (a line says which) and free text wraps at words. A cell is
never cut to `…`: a run id must stay whole to be copied into `show` or `--resume`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

UNBOUNDED = 10_000
WRAP_MIN = 24  # a free-text column narrower than this reads worse than no column at all


@dataclass(frozen=True)
class Col:
    """A column; `drop`: where the table is too wide, the highest is left out first (0: never);
    `wrap`: free text that wraps at words."""

    name: str
    drop: int = 0
    wrap: bool = False


def _table(
    columns: Sequence[Col],
    rows: Sequence[Sequence[str]],
    keep: list[int],
    measuring: bool,
    stacked: bool = False,
) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for i in keep:
        col = columns[i]
        if col.wrap and measuring:  # the narrowest it may wrap to
            table.add_column(col.name, width=WRAP_MIN)
        elif col.wrap:
            table.add_column(col.name, min_width=WRAP_MIN, ratio=1)
        else:  # a kept cell wider than the console folds onto the next line, whole
            table.add_column(col.name, no_wrap=True, overflow="fold")
    if not stacked:
        for row in rows:
            table.add_row(*(row[i] if i < len(row) else "" for i in keep))
    elif rows:
        # One row whose cells hold a column's lines prints as a row per line would (the box
        # draws no line between rows), and Rich lays out one cell per column instead of one
        # per run: most of `runs`' time over hundreds of runs.
        table.add_row(*(Text("\n".join(_line(row, i) for row in rows)) for i in keep))
    return table


def _line(row: Sequence[str], i: int) -> str:
    # a newline inside a cell (a hand-edited status) would shift the rows below it
    return row[i].replace("\n", " ") if i < len(row) else ""


def fitted_table(
    console: Console, columns: Sequence[Col], rows: Sequence[Sequence[str]], plain: bool = False
) -> tuple[Table, list[str]]:
    """The table of `rows` that fits `console`'s width, and the names of the columns left out.
    `plain`: the cells are text to print as written, one line each, in columns that never wrap;
    such a table is laid out column by column (fast over many rows)."""
    stack = plain and not any(c.wrap for c in columns)

    def natural(keep: list[int]) -> int:
        unbounded = console.options.update_width(UNBOUNDED)  # Measurement clamps to the width
        return Measurement.get(console, unbounded, _table(columns, rows, keep, True, stack)).maximum

    keep = list(range(len(columns)))
    by_drop = sorted(((c.drop, i) for i, c in enumerate(columns) if c.drop), reverse=True)
    while natural(keep) > console.width and by_drop:
        keep.remove(by_drop.pop(0)[1])
    left_out = [col.name for i, col in enumerate(columns) if i not in keep]
    # stacked cells line up only while no cell folds: too narrow a console gets a row per line
    stack = stack and natural(keep) <= console.width
    return _table(columns, rows, keep, False, stack), left_out


def print_fitted(
    console: Console,
    columns: Sequence[Col],
    rows: Sequence[Sequence[str]],
    more: str = "",
    plain: bool = False,
) -> None:
    """Print the fitted table, then a line naming the columns left out (`more`: where else
    they are, e.g. " or --json")."""
    table, left_out = fitted_table(console, columns, rows, plain)
    console.print(table)
    if left_out:
        console.print(left_out_line(left_out, more), markup=False, highlight=False)


def left_out_line(names: list[str], more: str = "") -> str:
    """What a narrow terminal did not show, and where to find it."""
    return f"(left out at this width: {', '.join(names)}; a wider terminal{more} shows them)"
