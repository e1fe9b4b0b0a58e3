"""Compare: val accuracy and val loss overlaid, one labelled curve per run and one band (mean
between min and max) per seed group; the header gives each one's figures."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Header, Static

from tui_trainer.runs.columns import label as column_label
from tui_trainer.runs.groups import SeedGroup, band_counts_text, epoch_band, spread_text
from tui_trainer.runs.store import Run
from tui_trainer.tui.widgets.group_table import FIGURES, group_row
from tui_trainer.tui.widgets.key_bar import KeyBar
from tui_trainer.tui.widgets.plots import ComparePlot


def curve_label(run: Run) -> str:
    """Short legend text: the id without its date, plus the LR (what sweeps vary most)."""
    label = re.sub(r"^\d{8}-", "", run.id)
    lr = run.config().get("lr")
    return f"{label} lr={lr:g}" if isinstance(lr, float | int) else label


class CompareScreen(Screen):
    BINDINGS = [Binding("escape,b", "app.pop_screen", "Back")]

    def __init__(self, runs: Sequence[Run] = (), groups: Sequence[SeedGroup] = ()) -> None:
        super().__init__()
        self.runs, self.groups = list(runs), list(groups)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="compare"):
            yield Static(id="compare-runs")
            yield ComparePlot("val_acc", id="compare-acc")
            yield ComparePlot("val_loss", id="compare-loss")
        yield KeyBar()

    def on_mount(self) -> None:
        self.sub_title = self._title()
        lines: list[str] = []
        bands: dict[str, list[list[dict]]] = {}
        for group in self.groups:
            label = _unique(group.label, bands, group.precision)
            bands[label] = [run.epochs() for run in group.runs]
            lines.append(_group_line(group, label, bands[label]))
        curves: dict[str, list[dict]] = {}
        for run in self.runs:
            label = _unique(curve_label(run), curves, run.id)
            curves[label] = run.epochs()
            lines.append(_run_line(run, label))
        self.query_one("#compare-runs", Static).update("\n".join(lines))
        self.query_one("#compare-acc", ComparePlot).replot(curves, bands)
        self.query_one("#compare-loss", ComparePlot).replot(curves, bands)

    def _title(self) -> str:
        if not self.groups:
            return f"Compare {len(self.runs)} runs"
        members = sum(len(g.runs) for g in self.groups)
        if len(self.groups) == 1 and not self.runs:
            return f"Seeds of {self.groups[0].label}: {members} runs"
        return f"Compare {len(self.groups)} seed groups ({members} runs)"


def _unique(label: str, taken: dict, other: str | None) -> str:
    """The label, or the label with `other` (precision, run id) when it is taken already."""
    return label if label not in taken else f"{label} {other}"


def _run_line(run: Run, label: str) -> str:
    summary = run.summary()
    numbers = "  ".join(
        f"{column_label(key)} {summary[key]:.3f}"
        for key in FIGURES
        if isinstance(summary.get(key), float)
    )
    return f"[b]{escape(label)}[/b]  {run.status(summary)}  {numbers}"


def _group_line(group: SeedGroup, label: str, curves: list[list[dict]]) -> str:
    """Name (n), statuses, the figures as mean ± std over its completed runs, seeds, and how
    many runs the band averages where that changes."""
    row = group_row(group)
    numbers = "  ".join(
        f"{column_label(key)} {spread_text(row[key], of=row['of'])}" for key in FIGURES if row[key]
    )
    counts = band_counts_text(epoch_band(curves, "val_acc"))
    return "  ".join(
        part
        for part in (
            f"[b]{escape(label)} (n={len(group.runs)})[/b]",
            row["statuses"],
            numbers,
            f"seeds {row['seeds']}",
            f"band {counts}" if counts else "",
        )
        if part
    )
