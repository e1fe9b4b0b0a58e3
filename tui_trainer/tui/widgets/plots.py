"""textual-plotext widgets drawing a run's curves with the shared `plots` functions.

`replot(...)` only records the picture in the widget's plotext figure and asks for a repaint;
plotext builds the text when Textual renders the widget, so a hidden plot costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tui_trainer.runs import display


class _RunPlot(PlotextPlot):
    """Keeps the last picture: plotext rebuilds the whole text on every `render`, and a view
    switch or a status-line change repaints widgets whose data did not change."""

    _version = 0
    _cache_key: tuple | None = None
    _cache: RenderResult | None = None

    def _redraw(self, draw, xlabel: bool = False) -> None:
        self.plt.clear_figure()
        draw(self.plt)
        if not xlabel:  # the title already says "per step" / "per epoch": one more row
            self.plt.xlabel("")
        self._version += 1
        self.refresh()

    def render(self) -> RenderResult:
        key = (self._version, self.size, self.app.theme, self.theme)
        if key != self._cache_key or self._cache is None:
            self._cache, self._cache_key = super().render(), key
        return self._cache


class StepLossPlot(_RunPlot):
    """Training loss per step (downsampled by `display.plot_step_loss`)."""

    def replot(self, steps: list[dict[str, Any]]) -> None:
        self._redraw(lambda plt: display.plot_step_loss(plt, steps))


class EpochPlot(_RunPlot):
    """Train and val curves per epoch for one metric: "acc" or "loss"."""

    TITLES = {"acc": "Accuracy per epoch", "loss": "Loss per epoch"}

    def __init__(self, metric: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = metric

    def replot(self, epochs: list[dict[str, Any]]) -> None:
        title = self.TITLES[self.metric]
        self._redraw(lambda plt: display.plot_epoch_metric(plt, epochs, self.metric, title))


class ComparePlot(_RunPlot):
    """One curve per run and one band per seed group (label -> its runs' epoch rows) for one
    epoch metric (e.g. "val_acc"), with a legend."""

    def __init__(self, metric: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = metric

    def replot(
        self,
        runs: dict[str, list[dict[str, Any]]],
        groups: dict[str, Sequence[list[dict[str, Any]]]] | None = None,
    ) -> None:
        self._redraw(lambda plt: display.plot_compare(plt, runs, self.metric, groups), xlabel=True)
