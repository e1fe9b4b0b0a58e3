"""The headless front end: the Typer app (app.py) and one module per command group.

`main` is the `tui-trainer` entry point; it imports the app only when called, so importing a
module of this package (the TUI uses none) costs nothing more than that module.
"""


def main() -> None:
    from tui_trainer.cli.app import main as run_app

    run_app()
