"""The LR range test's curve: smoothed loss against LR (log x), the suggestion as a line."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from tui_trainer.train.lr_curve import plot_curve


class LrCurvePlot(PlotextPlot):
    def replot(
        self, lrs: list[float], smoothed: list[float], suggestion: float | None = None
    ) -> None:
        """Draw the curve so far (the range test still running: no suggestion yet)."""
        self.plt.clear_figure()
        plot_curve(self.plt, list(lrs), list(smoothed), suggestion)
        self.refresh()
