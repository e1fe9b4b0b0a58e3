"""Ctrl-C and SIGTERM in headless mode: a clean stop, exit 130, status `interrupted`, and last.pt
exactly when an epoch finished. Until the signal, `runs`, `show` and `Run` read the writing run."""

from __future__ import annotations

import json
import signal
import time

import pytest
from typer.testing import CliRunner

from tests.support.processes import leftovers, small_set_options, spawn_cli
from tui_trainer.cli.app import app
from tui_trainer.runs.store import Run, list_runs

runner = CliRunner()


def read_everything(runs_dir) -> None:
    """What `runs`, `show` and the TUI read; none of it may fail while the run writes."""
    if not runs_dir.is_dir():  # not made yet: `runs` refuses a folder that does not exist
        return
    listed = runner.invoke(app, ["runs", "--runs-dir", str(runs_dir), "--json"])
    assert listed.exit_code == 0, listed.output
    for row in json.loads(listed.output):
        assert row["status"] == "running", row
        shown = runner.invoke(app, ["show", row["id"], "--runs-dir", str(runs_dir)])
        assert shown.exit_code == 0, shown.output
        run = Run(runs_dir / row["id"])
        run.meta(), run.summary(), run.steps(), run.epochs()


def wait_for_row(runs_dir, kind: str, proc, timeout: float = 300) -> None:
    """Read the folder as front ends do until a metrics row of `kind` is on disk."""
    deadline, next_read = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline and proc.poll() is None:
        if time.monotonic() >= next_read:  # not too often: the run needs the CPU
            read_everything(runs_dir)
            next_read = time.monotonic() + 0.5
        for run in list_runs(runs_dir):
            if any(row.get("kind") == kind for row in run.metrics()):
                return
        time.sleep(0.02)
    raise AssertionError(f"no {kind} row before the run ended: {proc.communicate()[0][-2000:]}")


@pytest.mark.parametrize(
    ("sig", "after"),
    [
        (signal.SIGINT, "epoch"),  # Ctrl-C once epoch 1 is done: last.pt stays
        (signal.SIGTERM, "step"),  # SIGTERM in the middle of epoch 1
    ],
    ids=["SIGINT-after-an-epoch", "SIGTERM-during-the-first-epoch"],
)
def test_a_signal_stops_the_run_cleanly_with_exit_130(sig, after, tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    args = ["run", "scratch", "--data", tiny_data, "--runs-dir", runs_dir]
    proc = spawn_cli(*args, *small_set_options(epochs=50))
    try:
        wait_for_row(runs_dir, after, proc)
        proc.send_signal(sig)
        output = proc.communicate(timeout=300)[0]
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    assert "stopping after the current step" in output and "status: interrupted" in output
    (run,) = list_runs(runs_dir)
    summary = run.summary()
    assert Run(run.path).status() == "interrupted" and summary["status"] == "interrupted"
    assert summary["message"].startswith("stopped during epoch")
    assert summary["epochs_done"] < 50
    assert run.last_path.is_file() == (summary["epochs_done"] >= 1)
    if after == "epoch":
        assert summary["epochs_done"] >= 1
    assert not leftovers(run.path)
