"""`tui-trainer runs` at 80 columns: whole headers and whole ids, and a line naming what is left
out."""

from tests.support.runs import fake_run, invoke
from tui_trainer.cli.browse import RUN_COLUMNS

SUMMARY = {"max_val_acc": 0.5, "test_acc": 0.406, "seconds": 41.0}
HEADERS = {c.name for c in RUN_COLUMNS}


def listing(runs):
    result = invoke("runs", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "…" not in result.output and max(len(line.rstrip()) for line in lines) <= 80
    assert set(lines[0].split()) <= HEADERS, lines[0]  # every header whole
    assert {"id", "status", "test_acc"} <= set(lines[0].split())
    return lines


def test_runs_at_80_columns_cuts_no_header_and_no_id(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    runs = tmp_path / "runs"
    fake_run(runs, "20240101-100000-scratch", "scratch", "completed", SUMMARY, lr=0.0005)
    fake_run(runs, "20240101-110000-freeze-conv", "freeze-conv", "interrupted", {})
    fake_run(runs, "20240101-120000-classes3-seed0-longer-name", "scratch", "completed", SUMMARY)
    lines = listing(runs)
    assert lines[2].startswith("20240101-100000-scratch ") and "0.406" in lines[2]
    assert lines[3].startswith("20240101-110000-freeze-conv ") and "interrupted" in lines[3]
    assert lines[4].startswith("20240101-120000-classes3-seed0-longer-name ")
    assert any(line.startswith("(left out at this width: ") for line in lines[5:])
