"""What every command group shares: the consoles, the common options, bad-input handling and the
run summary's lines.

Exit codes: 0 completed, 1 failed or diverged, 2 bad input (nothing written), 130 interrupted.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.display import format_number
from tui_trainer.runs.store import SUMMARY_FIELDS

# Real consoles, one per stream: Rich's Live display pushes itself onto the console it is given and
# pops itself off on stop, so the same object must serve a whole command. fit_consoles() sizes
# them for each invocation; file=None follows sys.stdout / sys.stderr as they are swapped.
out = Console()
err = Console(stderr=True)
PIPED_WIDTH = 200  # piped or redirected: rows a reader or grep gets whole, not cut at 80


def _columns_from_env() -> int | None:
    """$COLUMNS when it is a usable width; 0, junk or unset leave the width to the stream."""
    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def fit_consoles() -> None:
    """Size both consoles for this invocation: $COLUMNS if set, else the terminal's width on a
    terminal, else PIPED_WIDTH for stdout (stderr's one-line errors wrap at 80 there)."""
    columns = _columns_from_env()
    for console in (out, err):
        console.height = None  # an earlier invocation's (in-process tests call this again)
        if columns is not None:
            # width and height together: given the width alone, Rich sizes TERM=dumb at 80
            console.size = (columns, console.height)
        elif console.is_terminal or console is err:
            console.width = None  # Rich asks the terminal on every render
        else:
            console.width = PIPED_WIDTH


def interactive() -> bool:
    """Whether stdout can show a live display: a terminal that is not TERM=dumb."""
    return out.is_terminal and not out.is_dumb_terminal


DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Dataset folder (else $TUI_TRAINER_DATA, else ./data/caltech101)."),
]
RunsOpt = Annotated[
    Path | None,
    typer.Option("--runs-dir", help="Runs folder (else $TUI_TRAINER_RUNS, else ./runs)."),
]
DeviceOpt = Annotated[str | None, typer.Option(help="auto | cpu | cuda | mps")]
# A status's colour in the summary line; every other status is red.
STATUS_COLOURS = {
    RunStatus.COMPLETED: "green",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.PRUNED: "magenta",  # a search's verdict, not an error
}


def user_errors(fn):
    """Bad input: one line on stderr naming the problem and the fix, exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def print_summary(status: str, summary: dict, message: str = "") -> None:
    colour = STATUS_COLOURS.get(status, "red")
    out.print(f"status: [{colour}]{status}[/]" + (f" ({escape(message)})" if message else ""))
    for key in SUMMARY_FIELDS:
        if key in summary:
            out.print(f"  {key}: {format_number(summary[key], 4)}", highlight=False)
