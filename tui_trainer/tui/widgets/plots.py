"""textual-plotext widgets drawing a run's curves with the shared `plots` functions.

`replot(...)` only records the picture in the widget's plotext figure and asks for a repaint;
plotext builds the text when Textual renders the widget, so a hidden plot costs nothing.
"""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot

from ... import plots


class _RunPlot(PlotextPlot):
    def _redraw(self, draw) -> None:
        self.plt.clear_figure()
        draw(self.plt)
        self.refresh()


class StepLossPlot(_RunPlot):
    """Training loss per step (downsampled by `plots.plot_step_loss`)."""

    def replot(self, steps: list[dict[str, Any]]) -> None:
        self._redraw(lambda plt: plots.plot_step_loss(plt, steps))


class EpochPlot(_RunPlot):
    """Train and val curves per epoch for one metric: "acc" or "loss"."""

    TITLES = {"acc": "Accuracy per epoch", "loss": "Loss per epoch"}

    def __init__(self, metric: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = metric

    def replot(self, epochs: list[dict[str, Any]]) -> None:
        title = self.TITLES[self.metric]
        self._redraw(lambda plt: plots.plot_epoch_metric(plt, epochs, self.metric, title))


class ComparePlot(_RunPlot):
    """One curve per run for one epoch metric (e.g. "val_acc"), with a legend."""

    def __init__(self, metric: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = metric

    def replot(self, runs: dict[str, list[dict[str, Any]]]) -> None:
        self._redraw(lambda plt: plots.plot_compare(plt, runs, self.metric))
