"""The `data` group: check the dataset folder, or fetch Caltech-101 into it."""

from __future__ import annotations

import typer

from tui_trainer.cli.common import DataOpt, user_errors
from tui_trainer.data.layout import resolve_data_dir

data_app = typer.Typer(help="Inspect or fetch the dataset.", no_args_is_help=True)


@data_app.command("check")
@user_errors
def data_check(data: DataOpt = None) -> None:
    """Classes, images per split, image modes and unreadable files."""
    from tui_trainer.data.check import check_dataset

    report = check_dataset(resolve_data_dir(data))
    for line in report.lines():
        typer.echo(line)
    if report.unreadable:
        raise typer.Exit(1)


@data_app.command("download")
@user_errors
def data_download(data: DataOpt = None) -> None:
    """Fetch Caltech-101 with torchvision's downloader into the data folder."""
    from tui_trainer.data.check import download

    typer.echo(f"Caltech-101 is in {download(resolve_data_dir(data))}")
