"""`runs` lays its table out column by column (Rich's cost is per cell: hundreds of runs took
most of the command's time); it prints what a table with a row per run printed."""

from __future__ import annotations

from rich.console import Console

from tests.support.runs import fake_run
from tests.support.tui import make_fixture_runs
from tui_trainer.cli import tables
from tui_trainer.cli.browse import RUN_COLUMNS, run_row
from tui_trainer.runs.display import format_number
from tui_trainer.runs.store import list_runs


def _row_per_run(runs_dir, width: int) -> str:
    """The runs table as Rich lays it out with one row per run, at the columns `runs` keeps."""
    cells = []
    for row in (run_row(r) for r in list_runs(runs_dir)):
        dur = row["duration"]
        row = {**row, "duration": f"{dur / 60:.1f} min" if dur else "-"}
        cells.append([format_number(row[c.name], 4 if c.name == "lr" else 3) for c in RUN_COLUMNS])
    expected = Console(width=width, record=True)
    _, left_out = tables.fitted_table(expected, RUN_COLUMNS, cells)
    keep = [i for i, c in enumerate(RUN_COLUMNS) if c.name not in left_out]
    with expected.capture() as capture:
        expected.print(tables._table(RUN_COLUMNS, cells, keep, False, stacked=False))
        if left_out:
            expected.print(tables.left_out_line(left_out, " or --json"), markup=False)
    return capture.get()


def test_the_runs_table_prints_as_a_row_per_run(tmp_path):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    fake_run(runs_dir, "20240105-100000-crashed", "scratch", "", {"pid": 0}, lr=0.001)
    fake_run(runs_dir, "20240105-110000-odd", "resnet50-freeze", "hand-edited", {"seconds": 5})
    for width in (200, 80, 50, 20):
        assert _runs_output(runs_dir, width) == _row_per_run(runs_dir, width), width


def test_a_hand_edited_status_prints_as_written_on_its_own_row(tmp_path):
    runs_dir = tmp_path / "runs"
    fake_run(runs_dir, "20240105-100000-odd", "scratch", "hand\n[edited]", {"test_acc": 0.25})
    fake_run(runs_dir, "20240105-110000-next", "scratch", "completed", {"test_acc": 0.5})
    lines = _runs_output(runs_dir, 100).splitlines()
    assert lines[2].startswith("20240105-100000-odd") and "hand [edited]" in lines[2]
    assert lines[3].startswith("20240105-110000-next") and lines[4].startswith("(left out")


def _runs_output(runs_dir, width: int) -> str:
    result = invoke_with_env({"COLUMNS": str(width)}, "runs", "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    return result.output


def invoke_with_env(env: dict[str, str], *args):
    from typer.testing import CliRunner

    from tui_trainer.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)
