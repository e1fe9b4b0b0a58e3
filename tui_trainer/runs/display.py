"""How a run's numbers and curves are shown, shared by the CLI and the TUI: one number format,
and plotext drawings of a run's curves (`tui-trainer show` and the TUI's plot widgets).

Each drawing function takes a plotext-like object (the `plotext` module itself, or a textual-plotext
widget's `plt`) so the CLI and the TUI draw the same pictures from the same run-folder rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tui_trainer.runs.groups import epoch_band


def format_number(value: Any, digits: int = 3) -> str:
    """A summary value as front ends print it: fixed digits, tiny floats in %g, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:g}"
    return str(value)


def downsample(xs: list[float], ys: list[float], limit: int = 400) -> tuple[list, list]:
    """Average consecutive points into at most `limit` buckets: redraws stay cheap on long runs."""
    n = len(xs)
    if n <= limit:
        return list(xs), list(ys)
    size = n / limit
    out_x, out_y = [], []
    for b in range(limit):
        lo, hi = int(b * size), max(int((b + 1) * size), int(b * size) + 1)
        out_x.append(xs[hi - 1])
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


def plot_step_loss(plt: Any, steps: list[dict[str, Any]], label: str = "loss") -> None:
    plt.title("Training loss per step")
    plt.xlabel("step")
    if steps:
        xs = [s.get("global_step", i + 1) for i, s in enumerate(steps)]
        xs, ys = downsample(xs, [s["loss"] for s in steps])
        plt.plot(xs, ys, label=label, marker="braille")


def plot_epoch_metric(plt: Any, epochs: list[dict[str, Any]], metric: str, title: str) -> None:
    """`metric` is "acc" or "loss": the train and val curves per epoch."""
    plt.title(title)
    plt.xlabel("epoch")
    if not epochs:
        return
    xs = [e["epoch"] for e in epochs]
    plt.plot(xs, [e[f"train_{metric}"] for e in epochs], label=f"train {metric}", marker="braille")
    plt.plot(xs, [e[f"val_{metric}"] for e in epochs], label=f"val {metric}", marker="braille")
    if metric == "acc":
        plt.ylim(0, 1)
    else:
        limits = narrow_limits([e[f"{part}_loss"] for e in epochs for part in ("train", "val")])
        if limits is not None:
            plt.ylim(*limits)


def narrow_limits(values: list[float]) -> tuple[float, float] | None:
    """An axis +-10% around values that (nearly) coincide, as a loss after one epoch does, so
    the ticks are not eight digits of one number; None where plotext's own range reads well."""
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not finite:
        return None
    lo, hi = min(finite), max(finite)
    middle = (lo + hi) / 2
    pad = 0.1 * abs(middle) or 0.1
    if hi - lo >= pad:
        return None
    return max(0.0, middle - pad), middle + pad


# Curve colours: plotext's own sequence of terminal colours, so a compare of runs alone looks
# as it did when plotext picked them, and a band's three lines share one colour. plotext cannot
# fill between two lines, and a terminal's normal and bright colours are often one colour: a
# band's min and max lines are dotted (a plain character per cell) around its solid mean.
CURVE_COLORS = ("blue+", "green+", "red+", "cyan+", "magenta+", "yellow", "gray")
EDGE_MARKER = "·"


def plot_compare(
    plt: Any,
    runs: dict[str, list[dict[str, Any]]],
    metric: str,
    groups: dict[str, Sequence[list[dict[str, Any]]]] | None = None,
) -> None:
    """One epoch metric, e.g. "val_acc": one band per group (label -> its runs' epoch rows),
    drawn first, then one curve per run (label -> epoch rows).

    A band is its mean curve, labelled "label (n=3)", between its min and max curves (same colour,
    dotted, unlabelled), over the epochs at least two runs reached (`groups.epoch_band`); a
    run that goes on alone after that goes on dotted. A group of one run draws as a run."""
    plt.title(metric.replace("_", " "))
    plt.xlabel("epoch")
    entries = [*(groups or {}).items(), *((label, [rows]) for label, rows in runs.items())]
    for index, (label, curves) in enumerate(entries):
        color = CURVE_COLORS[index % len(CURVE_COLORS)]
        if index < len(groups or {}):
            label = f"{label} (n={len(curves)})"
        points = epoch_band(curves, metric)
        if points:
            _plot_band(plt, points, curves, metric, label, color)
        else:
            for i, rows in enumerate(curves):
                _plot_rows(plt, rows, metric, color, label if i == 0 else None)


def _plot_band(plt: Any, points, curves, metric: str, label: str, color) -> None:
    xs = [p.epoch for p in points]
    plt.plot(xs, [p.low for p in points], color=color, marker=EDGE_MARKER)
    plt.plot(xs, [p.high for p in points], color=color, marker=EDGE_MARKER)
    plt.plot(xs, [p.mean for p in points], color=color, marker="braille", label=label)
    last = points[-1].epoch
    for rows in curves:  # from the band's last epoch on, so the line joins it
        tail = [r for r in rows if r.get("epoch", 0) >= last]
        if len(tail) >= 2:
            _plot_rows(plt, tail, metric, color, None, EDGE_MARKER)


def _plot_rows(plt: Any, rows, metric: str, color, label, marker: str = "braille") -> None:
    rows = [r for r in rows if isinstance(r.get(metric), int | float)]
    if not rows:
        return
    xs = [r["epoch"] for r in rows]
    plt.plot(xs, [r[metric] for r in rows], color=color, marker=marker, label=label)
