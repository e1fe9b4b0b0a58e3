import json
import os

import pytest

from tui_trainer.errors import UserError
from tui_trainer.events import Epoch, RunEnded, RunStarted, Step
from tui_trainer.files import read_jsonl, write_json_atomic
from tui_trainer.runs.store import Run, create_run, ensure_writable, find_run, list_runs
from tui_trainer.runs.writer import RunWriter


def test_runs_started_in_the_same_second_get_distinct_folders(tmp_path, monkeypatch):
    from tui_trainer.runs import store as runs

    # the same second for both, even when the clock ticks between the two calls
    monkeypatch.setattr(runs, "make_run_id", lambda preset, name=None: f"20260101-000000-{preset}")
    a = create_run(tmp_path, {"config": {}}, "scratch")
    b = create_run(tmp_path, {"config": {}}, "scratch")
    assert a.path != b.path and b.id.startswith(a.id)
    assert [r.id for r in list_runs(tmp_path)] == sorted([a.id, b.id])


def test_metrics_reader_tolerates_a_cut_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "step", "loss": 1.0}\n{"kind": "step", "lo')
    assert read_jsonl(path) == [{"kind": "step", "loss": 1.0}]


def test_atomic_json_leaves_no_temp_files(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    write_json_atomic(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    assert os.listdir(tmp_path) == ["a.json"]


def test_running_run_whose_process_is_gone_is_crashed(tmp_path):
    run = create_run(tmp_path, {"config": {}}, "scratch")
    assert run.status() == "running"  # our own pid is alive
    summary = run.summary()
    summary["pid"] = 2**22 + 12345  # no such process
    run.write_summary(summary)
    assert run.status() == "crashed"


def test_writer_turns_events_into_metrics_and_summary(tmp_path):
    run = create_run(tmp_path, {"config": {"lr": 0.1}}, "scratch")
    writer = RunWriter(run)
    writer(
        RunStarted(
            run_id=run.id,
            config={},
            device="cpu",
            precision="fp32",
            num_classes=3,
            num_train=10,
            num_val=10,
            num_test=10,
            steps_per_epoch=2,
            epochs=1,
        )
    )
    writer(Step(run_id=run.id, epoch=1, step=1, steps_per_epoch=2, global_step=1, loss=2.5, lr=0.1))
    writer(
        Epoch(
            run_id=run.id,
            epoch=1,
            epochs=1,
            train_loss=2.0,
            train_acc=0.3,
            val_loss=2.1,
            val_acc=0.25,
            lr=0.1,
            seconds=1.5,
            is_best=True,
        )
    )
    writer(RunEnded(run_id=run.id, status="completed", summary={"test_acc": 0.2}))
    assert [m["kind"] for m in run.metrics()] == ["step", "epoch"]
    assert run.epochs()[0]["val_acc"] == 0.25
    assert run.summary()["status"] == "completed" and run.summary()["test_acc"] == 0.2
    assert run.status() == "completed"


def test_find_run_by_prefix_and_unknown_id(tmp_path):
    run = create_run(tmp_path, {"config": {}}, "finetune")
    assert find_run(tmp_path, run.id[:15]) == run
    assert find_run(tmp_path, "finetune") == run
    with pytest.raises(UserError, match="no run 'zzz'"):
        find_run(tmp_path, "zzz")


def test_unwritable_runs_folder_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="is not writable"):
        ensure_writable(blocker / "runs")


def test_folder_without_summary_still_lists(tmp_path):
    (tmp_path / "20260101-000000-x").mkdir()
    (tmp_path / "20260101-000000-x" / "config.json").write_text("{}")
    runs = list_runs(tmp_path)
    assert [r.id for r in runs] == ["20260101-000000-x"]
    assert Run(runs[0].path).status() == "crashed"


def _run_outside(tmp_path):
    """A run folder outside the runs folder, and a symlink to it inside: (runs, target, link)."""
    runs = tmp_path / "runs"
    target = create_run(tmp_path / "elsewhere", {"config": {}}, "scratch", name="faraway")
    ensure_writable(runs)
    link = runs / "linked"
    link.symlink_to(target.path, target_is_directory=True)
    return runs, target, link


def test_delete_run_refuses_a_symlink_pointing_out_and_leaves_its_target(tmp_path):
    from tui_trainer.runs.store import delete_run

    runs, target, link = _run_outside(tmp_path)
    with pytest.raises(UserError, match="is a link or a path out of the runs folder"):
        delete_run(Run(link))
    with pytest.raises(UserError, match="is a link or a path out of the runs folder"):
        delete_run(Run(runs / ".." / "elsewhere" / target.id))
    assert link.is_symlink() and target.config_path.is_file()
    assert sorted(p.name for p in target.path.iterdir()) == ["config.json", "summary.json"]


def test_run_ids_are_names_never_paths_out_of_the_runs_folder(tmp_path):
    runs, target, link = _run_outside(tmp_path)
    inside = create_run(runs, {"config": {}}, "scratch")
    with pytest.raises(UserError, match="run id is empty"):
        find_run(runs, "")  # '' would otherwise be the runs folder itself, or match every run
    for run_id in ("..", ".", f"../elsewhere/{target.id}", str(target.path), "a/b"):
        with pytest.raises(UserError, match="is a path, not a run id"):
            find_run(runs, run_id)
    with pytest.raises(UserError, match="is a link to a folder outside it"):
        find_run(runs, "linked")
    assert [r.id for r in list_runs(runs)] == [inside.id]  # the link is not listed
    with pytest.raises(UserError, match="no run 'faraway'"):
        find_run(runs, "faraway")  # nor found by a piece of the target's id
    # a link to a run inside the folder is the same run, and still found
    (runs / "alias").symlink_to(inside.path, target_is_directory=True)
    assert find_run(runs, "alias").config_path.is_file()


def test_delete_run_removes_a_link_inside_the_folder_not_what_it_points_at(tmp_path):
    from tui_trainer.runs.store import delete_run

    outside = tmp_path / "precious.pt"
    outside.write_text("keep me")
    run = create_run(tmp_path / "runs", {"config": {}}, "scratch")
    run.last_path.symlink_to(outside)
    delete_run(run)
    assert not run.path.exists() and outside.read_text() == "keep me"


def test_a_symlink_planted_as_metrics_jsonl_is_refused_not_written_through(tmp_path):
    """A shared runs folder: someone links metrics.jsonl to a file elsewhere; the run's next row
    fails (the run writer turns that into a one-line `failed`) and the target is untouched."""
    run = create_run(tmp_path / "runs", {"config": {}}, "p")
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    run.metrics_path.unlink(missing_ok=True)
    run.metrics_path.symlink_to(target)
    with pytest.raises(OSError):
        run.append_metric({"kind": "step", "epoch": 1})
    assert target.read_text() == "precious\n"
