"""`tui-trainer runs` at 80 columns: whole headers and whole ids."""

from tests.support.runs import fake_run, invoke

SUMMARY = {"max_val_acc": 0.5, "test_acc": 0.406, "seconds": 41.0}
NARROW = ["id", "lr", "epochs", "status", "best", "val", "test", "acc"]


def listing(runs):
    result = invoke("runs", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "…" not in result.output and max(len(line.rstrip()) for line in lines) <= 80
    return lines


def test_runs_at_80_columns_cuts_no_header_and_no_id(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    runs = tmp_path / "runs"
    fake_run(runs, "20240101-100000-scratch", "scratch", "completed", SUMMARY, lr=0.0005)
    lines = listing(runs)
    assert lines[0].split() == [*NARROW, "time"]
    assert "20240101-100000-scratch  0.0005" in lines[2] and lines[2].rstrip().endswith("41s")

    # a longer id and status: the time goes, the id stays whole
    fake_run(runs, "20240101-110000-freeze-conv", "freeze-conv", "interrupted", {})
    lines = listing(runs)
    assert lines[0].split() == NARROW
    assert lines[3].startswith("20240101-110000-freeze-conv") and "interrupted" in lines[3]

    # a named run's long id: fewer columns, all whole
    fake_run(runs, "20240101-120000-classes3-seed0-longer-name", "scratch", "completed", SUMMARY)
    lines = listing(runs)
    assert lines[0].split() == ["id", "status", "best", "val", "test", "acc"]
    assert lines[4].startswith("20240101-120000-classes3-seed0-longer-name  completed")
