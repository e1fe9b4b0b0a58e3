"""What every command group shares: the consoles, the common options, bad-input handling and the
run summary's lines.

Exit codes: 0 completed, 1 failed or diverged, 2 bad input (nothing written), 130 interrupted.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.display import format_number
from tui_trainer.runs.store import SUMMARY_FIELDS

err = Console(stderr=True)


class _Out:
    """stdout console made per call: full-width rows when piped, the terminal's width otherwise."""

    def console(self) -> Console:
        return Console(width=None if sys.stdout.isatty() else 200)

    def __getattr__(self, name):
        return getattr(self.console(), name)


out = _Out()

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
STATUS_COLOURS = {RunStatus.COMPLETED: "green", RunStatus.INTERRUPTED: "yellow"}


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
