"""How a run's numbers and curves are shown, shared by the CLI and the TUI: one number format,
and plotext drawings of a run's curves (`tui-trainer show` and the TUI's plot widgets).

Each drawing function takes a plotext-like object (the `plotext` module itself, or a textual-plotext
widget's `plt`) so the CLI and the TUI draw the same pictures from the same run-folder rows.
"""

from __future__ import annotations

from typing import Any


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


def plot_compare(plt: Any, runs: dict[str, list[dict[str, Any]]], metric: str) -> None:
    """One curve per run (label -> epoch rows) for one epoch metric, e.g. "val_acc"."""
    plt.title(metric.replace("_", " "))
    plt.xlabel("epoch")
    for label, epochs in runs.items():
        if epochs:
            xs = [e["epoch"] for e in epochs]
            plt.plot(xs, [e[metric] for e in epochs], label=label, marker="braille")
