"""The report's tables from the runs folder, and the augmentation preview (its Figure 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tui_trainer.cli.common import RunsOpt, user_errors
from tui_trainer.errors import UserError
from tui_trainer.runs.store import default_runs_dir


@user_errors
def report(
    fmt: Annotated[str, typer.Option("--format", help="md | csv | json")] = "md",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to FILE instead of stdout.")
    ] = None,
    runs_dir: RunsOpt = None,
    compare_paper: Annotated[
        bool,
        typer.Option(
            "--compare-paper",
            help="Put the report's own numbers beside ours, and whether ours (over their "
            "seeds) lie below, within or above them.",
        ),
    ] = False,
    any_protocol: Annotated[
        bool,
        typer.Option(
            "--any-protocol",
            help="Count quick runs too (classes, image_size... off the report's protocol).",
        ),
    ] = False,
) -> None:
    """The report's tables from the completed runs, each cell naming its runs.

    Runs that differ only by seed form one cell: mean ± std (n); n=2 of 3 when a seed failed or
    is still running."""
    from tui_trainer.studies.report import FORMATS, build_report
    from tui_trainer.studies.report_render import render

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not known: choose one of {', '.join(FORMATS)}")
    runs_dir = runs_dir or default_runs_dir()
    if not runs_dir.is_dir():
        raise UserError(f"runs folder {runs_dir} does not exist: pass --runs-dir DIR")
    text = render(build_report(runs_dir, any_protocol), fmt, compare_paper)
    if out_file is None:
        typer.echo(text, nl=False)
        return
    try:
        out_file.write_text(text)
    except OSError as exc:
        raise UserError(f"cannot write {out_file} ({exc.strerror}): pick another --out") from None
    typer.echo(f"report written to {out_file}")


@user_errors
def preview(
    image: Annotated[Path, typer.Argument(help="An image file (JPEG, PNG...).")],
    out_file: Annotated[Path, typer.Option("--out", help="The grid to write (.png or .jpg).")],
    seed: Annotated[int | None, typer.Option(help="Repeat the same random draws.")] = None,
) -> None:
    """Write the image beside its CS-HF, H-RP and B-GS-R augmentations (the report's Figure 5)."""
    from tui_trainer.data.preview import write_preview

    typer.echo(f"preview written to {write_preview(image, out_file, seed)}")
