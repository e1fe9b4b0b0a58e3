"""The `lr-find` command: the learning-rate range test of a preset (train/lr_find.py), a plot
of loss against LR (log x), the curve saved under `<runs dir>/.lr-find/`, and as the very last
line `suggested lr: X`. Progress goes to stderr; the plot and the suggestion to stdout."""

from __future__ import annotations

from typing import Annotated

import typer

from tui_trainer import config as C
from tui_trainer.cli.common import DataOpt, DeviceOpt, RunsOpt, err, out, user_errors
from tui_trainer.cli.listen import stopping
from tui_trainer.cli.training import PresetArg, RunSetOpt
from tui_trainer.data.layout import resolve_data_dir
from tui_trainer.errors import Stopped, UserError
from tui_trainer.events import Log
from tui_trainer.runs.store import default_runs_dir, ensure_writable
from tui_trainer.train import lr_curve

StartOpt = Annotated[float, typer.Option("--start", help="First LR of the range.")]
EndOpt = Annotated[float, typer.Option("--end", help="Last LR of the range.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Batches (one LR each), at most.")]
RuleOpt = Annotated[
    lr_curve.SuggestRule,
    typer.Option("--rule", help="How the suggestion is read off the smoothed curve."),
]
PROGRESS_EVERY = 10  # steps between progress lines


@user_errors
def lr_find(
    preset: PresetArg = None,
    set_: RunSetOpt = None,
    data: DataOpt = None,
    runs_dir: RunsOpt = None,
    device: DeviceOpt = None,
    start: StartOpt = 1e-6,
    end: EndOpt = 1.0,
    steps: StepsOpt = 100,
    rule: RuleOpt = lr_curve.LrFindOptions.rule,
) -> None:
    """LR range test of a preset: raise the LR exponentially over a few batches, plot the
    smoothed loss, suggest an LR. Changes no run's weights."""
    options = lr_curve.LrFindOptions(start, end, steps, rule)
    if preset is None:
        raise UserError("missing PRESET: name one (see `tui-trainer presets`)")
    overrides: dict[str, str] = C.parse_set_options(set_ or [])
    if device:
        overrides["device"] = device
    loaded, cfg = C.build_config(preset, overrides)
    data_dir = resolve_data_dir(data)
    runs = ensure_writable(runs_dir or default_runs_dir())
    from tui_trainer.train.lr_find import find_lr
    from tui_trainer.train.preparation import prepare

    with stopping(hint="nothing was saved") as stop:
        try:
            prep = prepare(cfg, data_dir, _progress, stop)
            result = find_lr(prep, options, _progress, stop)
        except Stopped:
            err.print("stopped: nothing was saved")
            raise typer.Exit(130) from None
    path = lr_curve.save_result(result, runs, loaded.name)
    typer.echo(plot_text(result))
    stopped = "stopped early: the loss diverged" if result.stopped_early else "full range"
    typer.echo(f"{result.steps_run} steps ({stopped}); curve saved to {path}")
    typer.echo(f"rule: {result.rule}")
    typer.echo(f"suggested lr: {lr_curve.format_lr(result.suggestion)}")


def _progress(event: object) -> None:
    if isinstance(event, Log):
        if not event.message.startswith("decoded ") or event.message.endswith("images"):
            err.print(event.message, markup=False, highlight=False)
    elif isinstance(event, lr_curve.LrFindStep) and event.step % PROGRESS_EVERY == 0:
        err.print(
            f"step {event.step}/{event.steps}  lr {lr_curve.format_lr(event.lr)}  "
            f"loss {event.smoothed:.4f}",
            markup=False,
            highlight=False,
        )


def plot_text(result: lr_curve.LrFindResult, width: int | None = None, height: int = 20) -> str:
    """The smoothed loss against LR on a log x axis, the suggestion marked, as plain text."""
    import plotext as plt

    plt.clear_figure()
    columns = width or (out.width if out.is_terminal else 100)  # the console's width, sized once
    plt.plotsize(min(columns, 120), height)
    plt.theme("clear")  # plain text: no colour codes in a file or a pipe
    lr_curve.plot_curve(plt, result.lrs, result.smoothed, result.suggestion)
    plt.ylabel("smoothed loss")
    return plt.uncolorize(plt.build())  # the clear theme still ends each line with a reset
