"""Run folders written before the restructure (tests/fixtures/legacy_runs, see its README) still
list, report and resume; a resumed one ends with a last.pt in the new, weights-only layout."""

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from tests.support.tiny_net import build_tiny_model
from tui_trainer.errors import UserError
from tui_trainer.runs.launch import resume_run
from tui_trainer.runs.store import Run, list_runs
from tui_trainer.studies.report import build_report
from tui_trainer.train import preparation
from tui_trainer.train.checkpoint import Checkpoint

FIXTURE = Path(__file__).parent.parent / "fixtures" / "legacy_runs"
DONE = "20261201-212505-done"
STOPPED = "20261201-212506-stopped"


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    folder = tmp_path / "runs"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("README.md"))
    return folder


def test_old_runs_list_with_their_statuses(runs_dir):
    assert {run.id: run.status() for run in list_runs(runs_dir)} == {
        DONE: "completed",
        STOPPED: "interrupted",
    }


def test_an_old_completed_run_is_in_the_report(runs_dir):
    # The fixture's 2-epoch schedule is in no table row: give the old config.json the schedule of
    # Table 1's "0.01 30 15 0.1" row (nothing else changes) and that cell is the old run's.
    config_path = runs_dir / DONE / "config.json"
    meta = json.loads(config_path.read_text())
    meta["config"].update(epochs=30, step_size=15)
    config_path.write_text(json.dumps(meta))
    report = build_report(runs_dir, any_protocol=True)
    cells = {
        (table.spec.key, row.keys): cell
        for table in report.tables
        for row in table.rows
        for cell in row.cells
        if cell.run_id is not None
    }
    assert list(cells) == [("scratch", ("0.01", "30", "15", "0.1"))]
    (cell,) = cells.values()
    summary = Run(runs_dir / DONE).summary()
    assert cell.run_id == DONE and cell.value == summary["test_acc"]  # TEST_ACC, the last column
    assert cell.protocol == "classes=3 image_size=64 resize=72 batch_size=32"


def test_an_old_last_pt_loads_without_unpickling_arbitrary_objects(runs_dir):
    with pytest.raises(pickle.UnpicklingError):  # numpy RNG state: not in the defaults
        torch.load(runs_dir / STOPPED / "last.pt", weights_only=True)
    ckpt = Checkpoint.load(runs_dir / STOPPED)
    assert ckpt.epoch == 1 and ckpt.state.best_epoch == 1 and ckpt.best_model is not None
    assert [h["epoch"] for h in ckpt.state.history] == [1]


def test_an_unreadable_last_pt_is_one_line(runs_dir):
    (runs_dir / STOPPED / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"last.pt is unreadable \(\w+\): delete it to resume"):
        Checkpoint.load(runs_dir / STOPPED)


def test_an_old_interrupted_run_resumes_to_the_end(runs_dir, real_data, monkeypatch):
    monkeypatch.setattr(preparation, "build_model", build_tiny_model)
    # keep_last (not in the old config.json: it defaults to false) keeps the new last.pt to read
    config_path = runs_dir / STOPPED / "config.json"
    meta = json.loads(config_path.read_text())
    meta["config"]["keep_last"] = True
    config_path.write_text(json.dumps(meta))
    run, ended = resume_run(STOPPED, runs_dir=runs_dir, data_dir=real_data)
    assert ended.status == "completed", ended.message
    assert ended.summary["epochs_done"] == 2
    assert Run(runs_dir / STOPPED).status() == "completed"
    assert [m["epoch"] for m in run.epochs()] == [1, 2]
    last = torch.load(run.last_path, weights_only=True)  # the new layout: no allow-list needed
    assert last["epoch"] == 2 and "rng" not in last and "config" not in last
    assert Checkpoint.load(run.path).state.history[-1]["epoch"] == 2
