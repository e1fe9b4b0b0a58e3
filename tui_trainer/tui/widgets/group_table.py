"""The Runs view's grouped table: one row per seed group (runs that differ only by seed), with
its runs' seeds and statuses and the mean ± std of their results.

Rows are keyed by the group's key (`runs.groups.seed_group_key`); sorting by a figure sorts by
its mean. The figures are over the group's completed runs: a run still training, stopped or
failed has no test accuracy to add, and its best val accuracy so far is not the run's.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.text import Text

from tui_trainer.events import RunStatus
from tui_trainer.runs.columns import label
from tui_trainer.runs.groups import SeedGroup, Spread, latest_per_seed, spread, spread_text
from tui_trainer.tui.widgets.results_table import STATUS_STYLE, Column, RowTable, format_cell

FIGURES = ("max_val_acc", "test_acc")
GROUP_COLUMNS = (
    Column("mark", " "),
    Column("label", "Group"),
    Column("precision", label("precision")),  # early: groups that differ by it alone share a label
    Column("max_val_acc", label("max_val_acc")),
    Column("test_acc", label("test_acc")),
    Column("runs", "Runs"),
    Column("seeds", "Seeds"),
    Column("statuses", label("status")),
)
MIXED_STYLE = "yellow"


def group_row(group: SeedGroup) -> dict[str, Any]:
    summaries = [run.summary() for run in group.runs]
    statuses = [run.status(summary) for run, summary in zip(group.runs, summaries, strict=True)]
    runs = zip(group.run_seeds, summaries, statuses, strict=True)
    chosen = latest_per_seed(runs, lambda r: r[0], lambda r: r[2] == RunStatus.COMPLETED)
    completed = [summary for _, summary, status in chosen.values() if status == RunStatus.COMPLETED]
    row: dict[str, Any] = {
        "key": group.key,
        "label": group.label,
        "precision": group.precision,
        "runs": len(group.runs),
        "of": len(group.seeds),  # "n=2 of 3": the seeds the group's runs were started with
        "seeds": ", ".join(str(seed) for seed in group.seeds),
        "statuses": status_counts_text(statuses),
        "style": group_style(statuses),
    }
    for key in FIGURES:
        figures = spread(summary.get(key) for summary in completed)
        row[key] = figures if figures.n else None  # None: sorted last, like a run's missing value
    return row


def status_counts_text(statuses: list[RunStatus | str]) -> str:
    """ "3 completed", "2 completed, 1 running": the most common first."""
    counts = Counter(str(status) for status in statuses)
    return ", ".join(f"{n} {status}" for status, n in counts.most_common())


def group_style(statuses: list[RunStatus | str]) -> str:
    """One status: its colour; a run still training: the running colour; else mixed."""
    if len(set(statuses)) == 1:
        return STATUS_STYLE.get(statuses[0], "")
    if RunStatus.RUNNING in statuses:
        return STATUS_STYLE[RunStatus.RUNNING]
    return MIXED_STYLE


class GroupTable(RowTable):
    """Seed groups as rows, keyed by group key."""

    COLUMNS = GROUP_COLUMNS
    ID_KEY = "key"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups: dict[str, SeedGroup] = {}

    def load_groups(self, groups: list[SeedGroup]) -> None:
        self.groups = {group.key: group for group in groups}
        self.load([group_row(group) for group in groups])

    @property
    def current_group(self) -> SeedGroup | None:
        key = self.current_id
        return None if key is None else self.groups.get(key)

    def marked_groups(self) -> list[SeedGroup]:
        """The marked groups (also those the filter hides), in folder order."""
        return [self.groups[r["key"]] for r in self.rows_data if r["key"] in self.marked]

    def cell_text(self, column: Column, row: dict[str, Any]) -> str:
        value = row.get(column.key)
        if isinstance(value, Spread):
            return spread_text(value, of=row["of"])
        return format_cell(column, value)

    def _cells(self, row: dict[str, Any]) -> list[Text | str]:
        cells = super()._cells(row)
        for key in ("label", "statuses"):
            index = [c.key for c in GROUP_COLUMNS].index(key)
            cells[index] = Text(str(cells[index]), style=row["style"])
        return cells
