"""The background checkpoint writer: snapshots that the next step cannot change, one write at a
time, failures raised in the training thread, no thread left behind; and in a run: an epoch's
row before its checkpoint, last.pt removed once the run completes (kept with keep_last=true)."""

from __future__ import annotations

import errno
import os
import threading

import pytest
import torch
from torch import nn

from tests.support.runs import tiny_config
from tests.support.tiny_net import TinyNet, build_tiny_model
from tui_trainer.errors import Stopped, StorageError
from tui_trainer.events import Step
from tui_trainer.files import read_jsonl
from tui_trainer.runs import launch
from tui_trainer.runs.groups import comparable
from tui_trainer.runs.launch import start_run
from tui_trainer.runs.store import Run
from tui_trainer.train import engine, preparation
from tui_trainer.train.checkpoint import Checkpoint, TrainState
from tui_trainer.train.checkpoint_writer import (
    THREAD_NAME,
    WRITER_NICE,
    BestWeights,
    CheckpointWriter,
    Snapshot,
    take_snapshot,
)


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def _sgd_step(net: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    loss = net(torch.rand(4, 3, 32, 32)).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_a_snapshot_is_a_copy_that_later_steps_do_not_change():
    torch.manual_seed(0)
    net = TinyNet(3)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    _sgd_step(net, optimizer)
    state = TrainState(epoch=1, history=[{"epoch": 1, "val_acc": 0.5}])
    taken = {k: v.clone() for k, v in net.state_dict().items()}
    momentum = {k: v["momentum_buffer"].clone() for k, v in optimizer.state_dict()["state"].items()}

    snap = take_snapshot(net, optimizer, scheduler, scaler, state, 12.5, None)
    _sgd_step(net, optimizer)  # in place, as the next epoch's first step does
    scheduler.step()
    state.epoch, state.history[0]["val_acc"] = 2, 0.9
    state.history.append({"epoch": 2})

    assert snap.epoch == 1 and snap.last.seconds == 12.5 and snap.ready is None
    assert snap.last.state.history == [{"epoch": 1, "val_acc": 0.5}]
    assert all(torch.equal(snap.last.model[k], v) for k, v in taken.items())
    assert not torch.equal(snap.last.model["classifier.weight"], net.classifier.weight)
    saved = snap.last.optimizer["state"]
    assert all(torch.equal(saved[k]["momentum_buffer"], v) for k, v in momentum.items())
    assert snap.last.scheduler["last_epoch"] == 0 and scheduler.last_epoch == 1


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="the pinned, event-ordered copy is CUDA's"
)
def test_a_cuda_snapshot_written_in_the_background_is_the_state_it_was_taken_at(tmp_path):
    torch.manual_seed(0)
    net = TinyNet(3).cuda()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)
    scaler = torch.amp.GradScaler("cuda", enabled=False)

    def step() -> None:
        loss = net(torch.rand(4, 3, 32, 32, device="cuda")).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    taken = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    with CheckpointWriter(tmp_path) as writer:
        snap = take_snapshot(net, optimizer, scheduler, scaler, TrainState(epoch=1), 1.0, None)
        assert snap.ready is not None
        for _ in range(5):  # queued behind the copy on the same stream: they must not reach it
            step()
        writer.submit(snap)
        writer.drain()
    saved = Checkpoint.load(tmp_path).model
    assert all(torch.equal(saved[k], v) for k, v in taken.items())
    assert not torch.equal(saved["classifier.weight"], net.classifier.weight.detach().cpu())


class _Job:
    """Stands in for a Snapshot: records its write, may block until released or fail."""

    def __init__(self, name: str, log: list[str], error: BaseException | None = None) -> None:
        self.name, self.log, self.error = name, log, error
        self.release = threading.Event()
        self.release.set()

    def write(self, run_dir) -> None:
        self.release.wait()
        if self.error is not None:
            raise self.error
        self.log.append(f"{self.name} written")


def test_a_submit_waits_for_the_write_under_way(tmp_path):
    log: list[str] = []
    first, second = _Job("first", log), _Job("second", log)
    first.release.clear()
    with CheckpointWriter(tmp_path) as writer:
        writer.submit(first)

        def hand_over_second():
            writer.submit(second)
            log.append("second handed over")

        submitter = threading.Thread(target=hand_over_second)
        submitter.start()
        submitter.join(timeout=0.5)
        assert submitter.is_alive()  # held back while the first write is under way
        first.release.set()
        submitter.join()
    assert log == ["first written", "second handed over", "second written"]
    assert _writer_threads() == []


def _disk_full(tmp_path) -> StorageError:
    return StorageError(tmp_path / "last.pt", OSError(errno.ENOSPC, "No space left on device"))


def test_a_failed_write_is_raised_in_the_training_thread_and_nothing_after_it_is_written(
    tmp_path,
):
    log: list[str] = []
    full = _disk_full(tmp_path)
    with pytest.raises(StorageError) as raised, CheckpointWriter(tmp_path) as writer:
        writer.submit(_Job("first", log, error=full))
        writer.submit(_Job("second", log))  # raises the first one's failure
    assert raised.value is full and log == []
    assert _writer_threads() == []


def test_leaving_the_block_waits_for_the_write_and_a_failure_outranks_a_stop(tmp_path):
    log: list[str] = []
    with CheckpointWriter(tmp_path) as writer:
        writer.submit(_Job("first", log))
    assert log == ["first written"]  # the end of the block waited for it

    with pytest.raises(StorageError), CheckpointWriter(tmp_path) as writer:
        writer.submit(_Job("failing", log, error=_disk_full(tmp_path)))
        raise Stopped  # the stop came second: the user learns of the full disk

    with pytest.raises(KeyboardInterrupt), CheckpointWriter(tmp_path) as writer:
        writer.submit(_Job("failing", log, error=_disk_full(tmp_path)))
        raise KeyboardInterrupt  # goes on as it is
    assert _writer_threads() == []


def _start(tiny_data, tmp_path, monkeypatch, on_event=None, **overrides):
    monkeypatch.setattr(preparation, "build_model", build_tiny_model)  # small checkpoints
    return start_run(
        tiny_config(epochs=3, **overrides),
        preset="test",
        overrides={},
        data_dir=tiny_data,
        runs_dir=tmp_path / "runs",
        on_event=on_event,
    )


def test_each_checkpoint_is_written_after_its_epoch_row(tiny_data, tmp_path, monkeypatch):
    """The ordering rule: when epoch N's checkpoint is written its metrics row is on disk; the
    test pass and the completed summary come after the last write."""
    seen = []
    real_write = Snapshot.write

    def write(snapshot, run_dir):
        rows = read_jsonl(run_dir / "metrics.jsonl")
        seen.append((snapshot.epoch, [r["epoch"] for r in rows if r["kind"] == "epoch"]))
        real_write(snapshot, run_dir)
        seen.append((snapshot.epoch, Run(run_dir).summary()["status"]))

    monkeypatch.setattr(Snapshot, "write", write)
    run, ended = _start(tiny_data, tmp_path, monkeypatch)
    assert ended.status == "completed"
    assert seen == [
        (1, [1]),
        (1, "running"),
        (2, [1, 2]),
        (2, "running"),
        (3, [1, 2, 3]),
        (3, "running"),
    ]
    assert _writer_threads() == []


def test_a_completed_run_removes_last_pt_only_after_its_summary_says_completed(
    tiny_data, tmp_path, monkeypatch
):
    seen = []
    real_remove = launch.remove_last

    def remove_last(run_dir):
        seen.append((Run(run_dir).summary()["status"], (run_dir / "last.pt").is_file()))
        real_remove(run_dir)

    monkeypatch.setattr(launch, "remove_last", remove_last)
    run, ended = _start(tiny_data, tmp_path, monkeypatch)
    assert ended.status == "completed" and seen == [("completed", True)]
    assert run.best_path.is_file() and not run.last_path.exists()


def test_keep_last_keeps_a_completed_runs_last_pt_and_is_not_compared(
    tiny_data, tmp_path, monkeypatch
):
    run, ended = _start(tiny_data, tmp_path, monkeypatch, keep_last=True)
    assert ended.status == "completed" and run.meta()["config"]["keep_last"] is True
    assert Checkpoint.load(run.path).epoch == 3 and run.best_path.is_file()
    # a run that keeps its last.pt measured the same thing as one that does not
    kept = tiny_config(keep_last=True).to_dict()
    assert comparable(kept) == comparable(tiny_config().to_dict()) is not None


def test_an_unexpected_error_in_the_writer_ends_the_run_failed_with_one_line(
    tiny_data, tmp_path, monkeypatch
):
    def broken_save(checkpoint, run_dir):
        if checkpoint.epoch == 2:
            raise RuntimeError("simulated failure\nof the checkpoint writer")
        real_save(checkpoint, run_dir)

    real_save = Checkpoint.save
    monkeypatch.setattr(Checkpoint, "save", broken_save)
    run, ended = _start(tiny_data, tmp_path, monkeypatch)
    assert ended.status == "failed" and run.status() == "failed"
    assert ended.message == "RuntimeError: simulated failure"  # one line
    assert Checkpoint.load(run.path).epoch == 1  # the folder resumes from epoch 1
    assert _writer_threads() == []


@pytest.mark.parametrize("end", ["interrupted", "diverged"])
def test_a_run_that_stops_or_diverges_has_its_checkpoints_on_disk_when_it_ends(
    end, tiny_data, tmp_path, monkeypatch
):
    """Both come at epoch 2's first steps, with epoch 1's write just handed over."""
    stop = threading.Event()

    def stop_in_epoch_2(event):
        if isinstance(event, Step) and event.epoch == 2:
            stop.set()

    def diverge_in_epoch_2(loss, state, cfg):
        if state.epoch == 1:
            raise engine.Diverged("loss stayed high (simulated)")

    if end == "diverged":
        monkeypatch.setattr(engine, "_check_divergence", diverge_in_epoch_2)
    monkeypatch.setattr(preparation, "build_model", build_tiny_model)
    run, ended = start_run(
        tiny_config(epochs=3),
        preset="test",
        overrides={},
        data_dir=tiny_data,
        runs_dir=tmp_path / "runs",
        on_event=stop_in_epoch_2 if end == "interrupted" else None,
        stop=stop,
    )
    assert ended.status == end and run.status() == end, ended.message
    assert ended.summary["epochs_done"] == 1 and Checkpoint.load(run.path).epoch == 1
    assert _writer_threads() == []


def test_best_weights_in_a_snapshot_go_to_best_pt(tmp_path):
    net = TinyNet(3)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    best = BestWeights(weights, 1, 0.75)
    state = TrainState(epoch=1, best_epoch=1, best_val_acc=0.75)
    with CheckpointWriter(tmp_path) as writer:
        writer.submit(take_snapshot(net, optimizer, scheduler, scaler, state, 1.0, best))
    loaded = Checkpoint.load(tmp_path)
    assert loaded.epoch == 1 and loaded.best_model is not None
    assert all(torch.equal(loaded.best_model[k], v) for k, v in weights.items())


def test_the_writer_thread_runs_at_the_lowest_priority(tmp_path):
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("thread priorities are set on Linux only")
    seen, before = [], os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    class Probe:
        epoch = 1

        def write(self, run_dir):
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    with CheckpointWriter(tmp_path) as writer:
        writer.submit(Probe())
        writer.drain()
    assert seen == [WRITER_NICE]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # training's
