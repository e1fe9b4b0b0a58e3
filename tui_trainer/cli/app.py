"""The headless front end: the Typer `app`, its commands registered group by group, and `main`.

Each command lives with its group (training, browse, sweeps, studies, data_commands,
bench_command) and stays thin: options in, a config built, one function called.
Exit codes: 0 completed, 1 failed or diverged, 2 bad input (nothing written), 130 interrupted.
"""

from __future__ import annotations

import os

import typer

from tui_trainer.cli import (
    bench_command,
    browse,
    lr_find_command,
    reference_command,
    studies,
    sweeps,
    training,
    tune,
)
from tui_trainer.cli.common import DataOpt, DeviceOpt, RunsOpt, fit_consoles, user_errors
from tui_trainer.cli.data_commands import data_app

app = typer.Typer(
    help="Train and compare image classifiers on Caltech-101 from the terminal.",
    add_completion=False,
    # a docstring's paragraphs are rewrapped to the terminal (rich mode keeps its line breaks)
    rich_markup_mode="markdown",
)
app.add_typer(data_app, name="data")


@app.callback(invoke_without_command=True)
def console(
    ctx: typer.Context, data: DataOpt = None, runs_dir: RunsOpt = None, device: DeviceOpt = None
) -> None:
    """With no command: open the console (same as `tui-trainer tui`)."""
    fit_consoles()
    if ctx.invoked_subcommand is None:
        tui(data, runs_dir, device)


@user_errors
def tui(data: DataOpt = None, runs_dir: RunsOpt = None, device: DeviceOpt = None) -> None:
    """Open the console: launch presets, watch runs live, browse and compare runs."""
    from tui_trainer.tui.app import make_app

    console_app = make_app(data_dir=data, runs_dir=runs_dir, device=device)
    console_app.run()
    raise typer.Exit(console_app.return_code or 0)  # 128 + N after signal N (SIGHUP: 129)


# The order here is the order of `tui-trainer --help`.
for command in (
    browse.presets,
    training.run,
    lr_find_command.lr_find,
    browse.runs,
    browse.show,
    tui,
    bench_command.bench,
    reference_command.reference_run,
    sweeps.sweeps,
    sweeps.sweep,
    tune.tune,
    studies.report,
    studies.preview,
):
    app.command()(command)


MIN_COLUMNS = 20  # narrower, Typer's help and error boxes draw nothing or break


def main() -> None:
    # Typer's own help and usage errors size themselves from $COLUMNS: 0 printed nothing at
    # all, 1 broke the error box (exit 1). An unusable value is dropped: the terminal decides.
    columns = os.environ.get("COLUMNS", "").strip()
    if columns and not (columns.isdigit() and int(columns) >= MIN_COLUMNS):
        del os.environ["COLUMNS"]
    app()
