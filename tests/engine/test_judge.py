"""The engine's per-epoch judge (a search's pruner speaks through it): a reason ends the run
`pruned` after that epoch, with no test pass and no last.pt; after the last epoch the run is
complete whatever the judge says."""

from __future__ import annotations

import json

from tests.support.processes import small_config
from tui_trainer.events import Epoch, RunStatus
from tui_trainer.runs.launch import start_run


def _start(tiny_data, tmp_path, judge, epochs):
    return start_run(
        small_config(epochs=epochs),
        preset="scratch",
        overrides={},
        data_dir=tiny_data,
        runs_dir=tmp_path / "runs",
        judge=judge,
    )


def test_a_reason_ends_the_run_pruned_after_that_epoch(tiny_data, tmp_path):
    seen: list[int] = []

    def judge(event: Epoch) -> str | None:
        seen.append(event.epoch)
        return "below the median" if event.epoch == 2 else None

    run, ended = _start(tiny_data, tmp_path, judge, epochs=3)
    assert ended.status == RunStatus.PRUNED and ended.message == "below the median"
    assert seen == [1, 2]
    summary = json.loads(run.summary_path.read_text())
    assert summary["status"] == "pruned" and summary["epochs_done"] == 2
    assert summary["test_acc"] is None  # a pruned run is no result on test
    assert not run.last_path.exists() and run.best_path.exists()
    assert run.status() == RunStatus.PRUNED


def test_the_last_epoch_completes_whatever_the_judge_says(tiny_data, tmp_path):
    seen: list[int] = []

    def judge(event: Epoch) -> str | None:
        seen.append(event.epoch)
        return "too late" if event.epoch == 1 else None

    _, ended = _start(tiny_data, tmp_path, judge, epochs=1)
    assert ended.status == RunStatus.COMPLETED and seen == [1]
