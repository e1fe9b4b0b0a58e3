"""The engine on a tiny synthetic dataset (3 classes, one grayscale, one corrupt image)."""

import threading

import pytest
import torch

from tests.support.runs import cache_entries, stop_decoding_after, tiny_config
from tui_trainer.events import Epoch, Log, RunEnded, RunStarted, Step
from tui_trainer.runs.launch import start_run
from tui_trainer.runs.store import Run
from tui_trainer.train import engine

SUMMARY_KEYS = {
    "status",
    "best_epoch",
    "max_val_acc",
    "test_acc",
    "test_loss",
    "final_train_loss",
    "accuracy_gap",
    "loss_gap",
    "epochs_done",
    "seconds",
    "skipped_images",
}


def _run(tiny_data, tmp_path, cfg, stop=None, on_event=None):
    events = []

    def listen(event):
        events.append(event)
        if on_event:
            on_event(event)

    run, ended = start_run(
        cfg,
        preset="test",
        overrides={},
        data_dir=tiny_data,
        runs_dir=tmp_path / "runs",
        on_event=listen,
        stop=stop,
    )
    return run, ended, events


def test_a_run_emits_events_in_order_and_fills_its_folder(tiny_data, tmp_path):
    run, ended, events = _run(tiny_data, tmp_path, tiny_config(epochs=2))
    kinds = [type(e) for e in events if not isinstance(e, Log)]
    assert kinds[0] is RunStarted and kinds[-1] is RunEnded
    epochs = [e for e in events if isinstance(e, Epoch)]
    steps = [e for e in events if isinstance(e, Step)]
    started = events[[type(e) for e in events].index(RunStarted)]
    assert [e.epoch for e in epochs] == [1, 2]
    assert len(steps) == 2 * started.steps_per_epoch
    assert [s.global_step for s in steps] == list(range(1, len(steps) + 1))
    # each epoch's steps come before that epoch's Epoch event
    order = [(type(e).__name__, e.epoch) for e in events if isinstance(e, Step | Epoch)]
    assert order.index(("Epoch", 1)) < order.index(("Step", 2))
    assert all(e.run_id == run.id for e in events if not isinstance(e, Log) or e.run_id)
    # the corrupt file was skipped with a warning naming it, and counted
    warnings = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    assert len(warnings) == 1 and "img_corrupt.jpg" in warnings[0]
    assert ended.status == "completed"
    summary = run.summary()
    assert SUMMARY_KEYS <= set(summary) and summary["skipped_images"] == 1
    assert summary["status"] == "completed" and summary["epochs_done"] == 2
    assert 0 <= summary["test_acc"] <= 1
    lines = run.metrics()
    assert [m["kind"] for m in lines].count("epoch") == 2
    assert set(lines[0]) == {"kind", "epoch", "step", "global_step", "loss", "lr"}
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"} <= set(lines[-1])
    # a completed run keeps its best weights; last.pt (only a resume reads it) is gone
    assert run.best_path.is_file() and not run.last_path.exists()
    meta = run.meta()
    assert meta["split_source"] == "seeded" and meta["config"]["epochs"] == 2
    assert meta["torch"] == torch.__version__


def test_best_epoch_is_chosen_by_val_accuracy(tiny_data, tmp_path, monkeypatch):
    # Script evaluate(): per epoch a (train, val) pair; val peaks at epoch 2 of 3. Then test.
    scripted = iter([(1.0, 0.5), (1.2, 0.4), (0.8, 0.7), (0.9, 0.6), (0.5, 0.9), (1.1, 0.5)])
    monkeypatch.setattr(engine, "evaluate", lambda *a, **k: next(scripted))
    monkeypatch.setattr(
        engine,
        "evaluate_with_predictions",
        lambda model, split, *a: (0.7, 0.66, torch.zeros(len(split), dtype=torch.long)),
    )
    run, ended, _ = _run(tiny_data, tmp_path, tiny_config(epochs=3))
    s = ended.summary
    assert s["best_epoch"] == 2 and s["max_val_acc"] == 0.6
    assert s["accuracy_gap"] == pytest.approx(0.7 - 0.6) and s["loss_gap"] == pytest.approx(0.1)
    assert s["final_train_loss"] == 0.5
    assert s["test_acc"] == 0.66
    assert torch.load(run.best_path, weights_only=True)["epoch"] == 2


def test_lr_follows_the_step_schedule(tiny_data, tmp_path):
    _, _, events = _run(tiny_data, tmp_path, tiny_config(epochs=3, lr=0.01, step_size=2, gamma=0.5))
    assert [e.lr for e in events if isinstance(e, Epoch)] == pytest.approx([0.01, 0.01, 0.005])


def test_stop_event_interrupts_and_keeps_the_last_finished_epoch(tiny_data, tmp_path):
    stop = threading.Event()

    def stop_in_epoch_2(event):
        if isinstance(event, Step) and event.epoch == 2:
            stop.set()

    run, ended, events = _run(tiny_data, tmp_path, tiny_config(epochs=3), stop, stop_in_epoch_2)
    assert ended.status == "interrupted"
    assert run.summary()["status"] == "interrupted" and run.summary()["epochs_done"] == 1
    assert [e.epoch for e in events if isinstance(e, Epoch)] == [1]
    assert torch.load(run.last_path, weights_only=False)["epoch"] == 1


def test_a_stop_during_the_decode_ends_interrupted_with_nothing_written(
    tiny_data, tmp_path, monkeypatch
):
    stop = threading.Event()
    decoded = stop_decoding_after(monkeypatch, 5, stop.set)
    run, ended, events = _run(tiny_data, tmp_path, tiny_config(), stop)
    assert run is None and ended.status == "interrupted" and len(decoded) == 5  # one thread
    assert ended.message == "stopped after decoding 5/38 images: no run folder was created"
    assert events[-1] == ended and not any(isinstance(e, RunStarted | Step) for e in events)
    assert list((tmp_path / "runs").iterdir()) == [] and cache_entries() == []


def test_a_huge_lr_stops_the_run_as_diverged(tiny_data, tmp_path):
    run, ended, _ = _run(tiny_data, tmp_path, tiny_config(epochs=3, lr=1e6, weight_decay=0.0))
    assert ended.status == "diverged" and "lower the lr" in ended.message
    assert run.summary()["status"] == "diverged"


def test_cpu_runs_are_repeatable(tiny_data, tmp_path):
    cfg = tiny_config(epochs=1, augment="cs-hf")
    _, a, _ = _run(tiny_data, tmp_path / "a", cfg)
    _, b, _ = _run(tiny_data, tmp_path / "b", cfg)
    assert a.summary["max_val_acc"] == b.summary["max_val_acc"]
    assert a.summary["final_train_loss"] == b.summary["final_train_loss"]


def test_engine_trains_in_a_worker_thread(tiny_data, tmp_path):
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(ended=_run(tiny_data, tmp_path, tiny_config(epochs=1))[1])
    )
    worker.start()
    worker.join(timeout=300)
    assert result["ended"].status == "completed"


def test_engine_modules_import_no_ui_library():
    """Every module outside the two front ends (tui/, cli/), found by walking the package, imports
    without loading textual, typer or rich."""
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys, tui_trainer\n"
        "core = [m.name for m in pkgutil.walk_packages(tui_trainer.__path__, 'tui_trainer.')\n"
        "        if m.name.split('.')[1] not in ('tui', 'cli', '__main__')]\n"
        "for name in core: importlib.import_module(name)\n"
        "bad = [m for m in ('textual', 'typer', 'rich') if m in sys.modules]\n"
        "print(len(core), bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, bad = out.stdout.strip().split(" ", 1)
    assert int(count) >= 20, out.stdout  # the walk found the core, not an empty package
    assert bad == "[]"


def test_prepare_fails_before_any_folder_exists(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        start_run(
            tiny_config(),
            preset="t",
            overrides={},
            data_dir=tmp_path / "none",
            runs_dir=tmp_path / "runs",
        )
    assert not any((tmp_path / "runs").iterdir())


def test_run_folder_reads_back(tiny_data, tmp_path):
    run, _, _ = _run(tiny_data, tmp_path, tiny_config(epochs=1))
    again = Run(run.path)
    assert again.config()["image_size"] == 64 and again.status() == "completed"
