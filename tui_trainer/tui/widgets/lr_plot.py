"""The LR range test's curve: smoothed loss against LR (log x), the suggestion marked."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from tui_trainer.train.lr_curve import plot_curve


class LrCurvePlot(PlotextPlot):
    _curve: tuple[list[float], list[float], float | None] = ([], [], None)

    def replot(
        self, lrs: list[float], smoothed: list[float], suggestion: float | None = None
    ) -> None:
        """Draw the curve so far (the range test still running: no suggestion yet)."""
        self._curve = (list(lrs), list(smoothed), suggestion)
        self.refresh()

    def render(self):
        # The figure is made anew for each render: plotext's build rescales a log axis's
        # points in place, so a second build of a figure of two series (curve and suggestion)
        # takes the log of logs and fails.
        self.plt.clear_figure()
        if self._curve[0]:  # no points yet: an empty frame (a log axis of nothing fails)
            plot_curve(self.plt, *self._curve)
        return super().render()
