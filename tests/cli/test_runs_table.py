"""`runs` lays its table out column by column (Rich's cost is per cell: hundreds of runs took
most of the command's time); it prints what a table with a row per run printed."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from tests.support.runs import fake_run
from tests.support.tui import make_fixture_runs
from tui_trainer.cli.browse import NARROW_RUN_COLUMNS, RUN_COLUMNS, run_row
from tui_trainer.runs.display import format_number
from tui_trainer.runs.store import list_runs


def _row_per_run_table(runs_dir, cols) -> Table:
    """The runs table as Rich lays it out with one row per run."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in cols:
        table.add_column(col, no_wrap=True)
    for row in (run_row(r) for r in list_runs(runs_dir)):
        dur = row["duration"]
        row = {**row, "duration": f"{dur / 60:.1f} min" if dur else "-"}
        table.add_row(*(format_number(row[c], 4 if c == "lr" else 3) for c in cols))
    return table


def test_the_runs_table_prints_as_a_row_per_run(tmp_path):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    fake_run(runs_dir, "20240105-100000-crashed", "scratch", "", {"pid": 0}, lr=0.001)
    fake_run(runs_dir, "20240105-110000-odd", "resnet50-freeze", "hand-edited", {"seconds": 5})
    for width, cols in ((200, RUN_COLUMNS), (80, NARROW_RUN_COLUMNS), (50, NARROW_RUN_COLUMNS)):
        expected = Console(width=width, record=True)
        with expected.capture() as capture:
            expected.print(_row_per_run_table(runs_dir, cols))
        assert _runs_output(runs_dir, width) == capture.get(), width


def test_a_hand_edited_status_prints_as_written_on_its_own_row(tmp_path):
    runs_dir = tmp_path / "runs"
    fake_run(runs_dir, "20240105-100000-odd", "scratch", "hand\n[edited]", {"test_acc": 0.25})
    fake_run(runs_dir, "20240105-110000-next", "scratch", "completed", {"test_acc": 0.5})
    lines = _runs_output(runs_dir, 100).splitlines()
    assert lines[2].startswith("20240105-100000-odd") and "hand [edited]" in lines[2]
    assert lines[3].startswith("20240105-110000-next") and len(lines) == 4


def _runs_output(runs_dir, width: int) -> str:
    result = invoke_with_env({"COLUMNS": str(width)}, "runs", "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    return result.output


def invoke_with_env(env: dict[str, str], *args):
    from typer.testing import CliRunner

    from tui_trainer.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)
