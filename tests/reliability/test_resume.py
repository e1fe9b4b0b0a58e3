"""Resume: a run stopped part-way and continued ends exactly where an uninterrupted run ends."""

import signal
import threading

import pytest
import torch

from tests.support.processes import small_config, stable
from tests.support.runs import cache_entries, stop_decoding_after
from tui_trainer.errors import UserError
from tui_trainer.events import Epoch, RunStarted, Step
from tui_trainer.runs.launch import resume_run, start_run
from tui_trainer.runs.resume import rewound_metrics
from tui_trainer.runs.store import Run
from tui_trainer.train.checkpoint import load_best
from tui_trainer.train.system_metrics import SystemPeaks


def _start(tiny_data, runs_dir, cfg, stop=None, on_event=None):
    return start_run(
        cfg,
        preset="test",
        overrides={},
        data_dir=tiny_data,
        runs_dir=runs_dir,
        on_event=on_event,
        stop=stop,
    )


def test_a_resumed_run_ends_with_the_metrics_of_an_uninterrupted_one(tiny_data, tmp_path):
    # step_size=1, gamma=0.5: the lr halves every epoch, so a restarted schedule would show.
    cfg = small_config(epochs=3, step_size=1, gamma=0.5, augment="cs-hf")
    _, straight = _start(tiny_data, tmp_path / "a", cfg)

    stop = threading.Event()

    def stop_during_epoch_2(event):  # epoch 1 finished; epoch 2 has written a step row
        if isinstance(event, Step) and event.epoch == 2:
            stop.set()

    run, first = _start(tiny_data, tmp_path / "b", cfg, stop, stop_during_epoch_2)
    assert first.status == "interrupted" and run.status() == "interrupted"
    assert [m["epoch"] for m in run.metrics() if m["kind"] == "step"][-1] == 2
    events = []
    again, resumed = resume_run(run.id[-10:], runs_dir=tmp_path / "b", on_event=events.append)
    assert again == run and resumed.status == "completed"
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.start_epoch == 2
    assert [e.epoch for e in events if isinstance(e, Epoch)] == [2, 3]

    reference = Run(next((tmp_path / "a").iterdir()))
    assert stable(run.metrics()) == stable(reference.metrics())  # steps and epochs, in order
    assert [e["lr"] for e in run.epochs()] == pytest.approx([0.01, 0.005, 0.0025])
    assert stable([resumed.summary]) == stable([straight.summary])
    summary = run.summary()
    assert summary["status"] == "completed" and summary["resumes"] == 1
    assert "message" not in summary  # the interruption's "stopped during epoch 2" is gone

    # The run is now completed: resuming it again is refused and touches nothing.
    before = {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()}
    with pytest.raises(UserError, match="is completed: it has nothing left to train"):
        resume_run(run.id, runs_dir=tmp_path / "b")
    assert {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()} == before


def test_a_stop_while_a_resume_decodes_leaves_the_folder_as_it_was(
    tiny_data, tmp_path, monkeypatch
):
    stop = threading.Event()

    def stop_at_step_1(event):
        if isinstance(event, Step):
            stop.set()

    run, _ = _start(tiny_data, tmp_path, small_config(epochs=2), stop, stop_at_step_1)
    assert run.status() == "interrupted"
    for entry in cache_entries():  # the resume decodes again (as on another machine)
        entry.unlink()
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    stop_decode = threading.Event()
    stop_decoding_after(monkeypatch, 3, stop_decode.set)
    events = []
    again, ended = resume_run(run.id, runs_dir=tmp_path, on_event=events.append, stop=stop_decode)
    assert again == run and ended.status == "interrupted" and events[-1] == ended
    assert ended.message == f"stopped after decoding 3/38 images: {run.path} is as it was"
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before
    assert run.status() == "interrupted" and cache_entries() == []


def test_rewound_metrics_cut_the_unfinished_epoch_and_rebuild_a_lost_epoch_row():
    rows = [
        {"kind": "step", "epoch": 1, "global_step": 1},
        {"kind": "step", "epoch": 1, "global_step": 2},
        {"kind": "epoch", "epoch": 1, "val_acc": 0.5},
        {"kind": "step", "epoch": 2, "global_step": 3},
        {"kind": "step", "epoch": 2, "global_step": 4},  # epoch 2's row was lost by a kill
        {"kind": "step", "epoch": 3, "global_step": 5},  # the unfinished epoch
    ]
    history = [
        {"epoch": 1, "val_acc": 0.5, "lr": 0.1},
        {"epoch": 2, "val_acc": 0.6, "lr": 0.1, "train_loss": 1.0},
    ]
    out = rewound_metrics(rows, 2, history)
    assert [(r["kind"], r["epoch"]) for r in out] == [
        ("step", 1),
        ("step", 1),
        ("epoch", 1),
        ("step", 2),
        ("step", 2),
        ("epoch", 2),
    ]
    assert out[2] == rows[2] and out[-1] == {
        "kind": "epoch",
        "epoch": 2,
        "val_acc": 0.6,
        "lr": 0.1,
        "train_loss": 1.0,
    }
    assert rewound_metrics(rows + [rows[2]], 1, history)[-1] == rows[2]  # a duplicate row goes
    assert rewound_metrics(rows, 0, history) == []


def test_a_resume_writes_a_lost_best_pt_before_it_trains(tiny_data, tmp_path):
    # best.pt lost (a kill between last.pt's and best.pt's renames, a disk full on best.pt):
    # last.pt's epoch was the best, and a resume must put best.pt back at once, not after its
    # next epoch: stopped again before that epoch ends, or with no epochs left (the completed
    # run then deletes last.pt), the best weights would be gone.
    cfg = small_config(epochs=2)
    stop = threading.Event()

    def stop_in_epoch_2(event):
        if isinstance(event, Step) and event.epoch == 2:
            stop.set()

    run, first = _start(tiny_data, tmp_path, cfg, stop, stop_in_epoch_2)
    assert first.status == "interrupted"
    run.best_path.unlink()
    again = threading.Event()
    _, resumed = resume_run(
        run.id,
        runs_dir=tmp_path,
        stop=again,
        on_event=lambda e: isinstance(e, Step) and again.set(),
    )
    assert resumed.status == "interrupted"  # stopped at epoch 2's first step, as before
    best = load_best(run.best_path)
    last = torch.load(run.last_path, weights_only=True)
    assert best["epoch"] == 1 and last["epoch"] == 1
    assert all(torch.equal(best["model"][k], v) for k, v in last["model"].items())


def test_a_resumed_run_drops_the_last_sessions_system_peaks_and_stop_reason(tiny_data, tmp_path):
    # The first session, stopped by a console's SIGHUP: its summary records that session's
    # peaks ("system") and why it stopped ("stopped"). While the resume trains, and once it has
    # completed, neither may still speak of the first session alone.
    from tui_trainer.tui.hangup import REASONS, record_stop_reason

    stop = threading.Event()

    def stop_in_epoch_2(event):
        if isinstance(event, Step) and event.epoch == 2:
            stop.set()

    run, first = _start(tiny_data, tmp_path, small_config(epochs=2), stop, stop_in_epoch_2)
    record_stop_reason(run, first, REASONS[signal.SIGHUP])
    before = run.summary()
    assert before["stopped"].startswith("SIGHUP") and before["system"]["samples"] >= 1
    earlier_samples = len(run.system())

    during = []

    def look_while_training(event):
        if isinstance(event, Step) and not during:
            during.append((run.summary(), run.system_peaks()))

    _, resumed = resume_run(run.id, runs_dir=tmp_path, on_event=look_while_training)
    assert resumed.status == "completed"
    summary_then, peaks_then = during[0]
    assert "system" not in summary_then and "stopped" not in summary_then
    assert peaks_then == SystemPeaks.of(run.system()[: peaks_then.samples])  # the file's, so far
    summary = run.summary()
    assert "stopped" not in summary
    # the final peaks count both sessions' samples (the sampler reads the earlier ones back)
    assert summary["system"]["samples"] == len(run.system()) > earlier_samples
