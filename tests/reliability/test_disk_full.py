"""Disk full, quota and unwritable folders: a write that fails ends the run `failed` with one line
(the file, the reason, the free space, `--resume`), leaves the previous last.pt valid and no temp
file, and the run resumes to the same end as an uninterrupted one.

The faults are injected: ENOSPC/EROFS/EACCES from os.fsync for one file of the run folder (the
point where a network file system reports a full disk), or from Run.append_metric for the step
rows (appended without fsync). A real read-only folder cannot be had here: the tests run as root,
where chmod does not stop writes, so "the folder became read-only" is an injected EROFS/EACCES
on every write from some moment on.
"""

from __future__ import annotations

import errno
import json
import os
import re

import pytest
import torch

from tests.support.processes import small_config, small_set_options, stable
from tests.support.runs import invoke
from tui_trainer.errors import StorageError
from tui_trainer.events import Step
from tui_trainer.runs import store
from tui_trainer.runs.launch import resume_run, start_run
from tui_trainer.runs.store import Run
from tui_trainer.train.checkpoint import Checkpoint, load_best

CFG = dict(epochs=3, step_size=1, gamma=0.5)  # the lr halves every epoch: a restart would show
MESSAGE = re.compile(
    r"^cannot write (?P<path>\S+) \((?P<reason>[^;]+); (?P<free>\d+(\.\d)? [kMG]B) free on that "
    r"file system\): (?P<hint>[^,]+), then `tui-trainer run --resume (?P<id>\S+)`"
)


def _start(tiny_data, runs_dir, on_event=None):
    return start_run(
        small_config(**CFG),
        preset="test",
        overrides={},
        data_dir=tiny_data,
        runs_dir=runs_dir,
        on_event=on_event,
    )


@pytest.fixture
def reference(tiny_data, tmp_path):
    """An uninterrupted run of the same config: (its folder, its RunEnded)."""
    run, ended = _start(tiny_data, tmp_path / "reference")
    assert ended.status == "completed"
    return run, ended


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


class Faults:
    """os.fsync and Run.append_metric that fail with `code` for the writes `fails(path, n)` picks
    (`n`: how many fsyncs of a file with that name came before, this one included)."""

    def __init__(self, monkeypatch, code: int = errno.ENOSPC) -> None:
        self.code, self.seen, self.failed = code, {}, []
        self.fsync_rule = lambda name, n: False
        self.append_rule = lambda row: False
        real_fsync, real_append = os.fsync, Run.append_metric

        def fsync(fd):
            path = _fd_path(fd)
            name = _plain_name(os.path.basename(path))
            self.seen[name] = n = self.seen.get(name, 0) + 1
            if self.fsync_rule(name, n):
                self._fail(path)
            return real_fsync(fd)

        def append_metric(run, row, sync=False):
            if self.append_rule(row):
                with run.metrics_path.open("a") as fh:  # half a line made it, as on a full disk
                    fh.write(json.dumps(row)[:10])
                self._fail(str(run.metrics_path))
            return real_append(run, row, sync)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(Run, "append_metric", append_metric)

    def _fail(self, path: str):
        self.failed.append(os.path.basename(path))
        raise OSError(self.code, os.strerror(self.code), path)

    def off(self):
        self.fsync_rule = lambda name, n: False
        self.append_rule = lambda row: False


def _plain_name(name: str) -> str:
    """`.last.pt.abc123.tmp` -> `last.pt`: the file a temp file becomes."""
    if name.startswith(".") and name.endswith(".tmp"):
        return name[1:].rsplit(".", 2)[0]
    return name


def _check_failed_folder(run: Run, message: str, file: str, reason: str, last_epoch: int):
    """The one-line message, the previous last.pt, no temp file."""
    assert "\n" not in message
    match = MESSAGE.match(message)
    assert match, message
    assert match["path"] == str(run.path / file) and match["reason"] == reason
    assert match["id"] == run.id
    assert not [p.name for p in run.path.iterdir() if p.name.endswith(".tmp")]
    assert Checkpoint.load(run.path).epoch == last_epoch


def _resume_and_compare(run: Run, reference):
    ref_run, straight = reference
    again, resumed = resume_run(run.id, runs_dir=run.path.parent)
    assert again == run and resumed.status == "completed", resumed.message
    assert stable(run.metrics()) == stable(ref_run.metrics())  # steps and epochs, in order
    assert stable([resumed.summary]) == stable([straight.summary])
    summary = run.summary()
    assert summary["status"] == "completed" and "message" not in summary
    best, ref_best = load_best(run.best_path), load_best(ref_run.best_path)
    assert best["epoch"] == ref_best["epoch"]
    assert all(torch.equal(best["model"][k], v) for k, v in ref_best["model"].items())


@pytest.mark.parametrize(
    ("file", "fsync_rule", "append_rule", "last_epoch"),
    [
        # the first step row of epoch 2, appended without fsync: half a line is left
        ("metrics.jsonl", None, lambda r: r["kind"] == "step" and r["epoch"] == 2, 1),
        # epoch 2's row (fsynced), written before epoch 2's checkpoints: last.pt of epoch 1 stays
        ("metrics.jsonl", lambda name, n: name == "metrics.jsonl" and n == 2, None, 1),
        # epoch 2's summary rewrite, also before epoch 2's checkpoints
        ("summary.json", lambda name, n: name == "summary.json" and n == 4, None, 1),
        # epoch 2's last.pt, in the background writer (raised at epoch 3's end): epoch 1's stays
        ("last.pt", lambda name, n: name == "last.pt" and n == 2, None, 1),
        # epoch 1's best.pt (epoch 1 is always the best so far): last.pt of epoch 1 holds it
        ("best.pt", lambda name, n: name == "best.pt" and n == 1, None, 1),
    ],
    ids=["step-row", "epoch-row", "summary", "last.pt", "best.pt"],
)
def test_a_full_disk_at_each_write_fails_the_run_and_it_resumes(
    tiny_data, tmp_path, monkeypatch, reference, file, fsync_rule, append_rule, last_epoch
):
    faults = Faults(monkeypatch)
    faults.fsync_rule = fsync_rule or faults.fsync_rule
    faults.append_rule = append_rule or faults.append_rule
    run, ended = _start(tiny_data, tmp_path / "runs")
    assert [_plain_name(name) for name in faults.failed] == [file]  # once
    faults.off()
    assert ended.status == "failed" and run.status() == "failed"
    assert run.summary()["message"] == ended.message
    _check_failed_folder(run, ended.message, file, "No space left on device", last_epoch)
    assert "free space, then" in ended.message
    _resume_and_compare(run, reference)


def test_a_resume_on_a_disk_still_full_is_one_line_and_leaves_the_folder_as_it_was(
    tiny_data, tmp_path, monkeypatch, reference
):
    """The rewind before a resume writes metrics.jsonl and summary.json: a disk still full there
    is bad input (one line naming the file), the folder keeps its bytes, a later resume works."""
    faults = Faults(monkeypatch)
    faults.fsync_rule = lambda name, n: name == "last.pt" and n == 2
    run, ended = _start(tiny_data, tmp_path / "runs")
    assert ended.status == "failed"
    faults.off()
    before = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()}
    faults.fsync_rule = lambda name, n: name in ("metrics.jsonl", "summary.json")
    with pytest.raises(StorageError) as refused:
        resume_run(run.id, runs_dir=run.path.parent)
    faults.off()
    assert MESSAGE.match(str(refused.value)) and "\n" not in str(refused.value)
    after = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()}
    assert after == before
    _resume_and_compare(run, reference)


def test_a_folder_become_read_only_mid_run_leaves_it_resumable(
    tiny_data, tmp_path, monkeypatch, reference
):
    """Every write fails from epoch 2's first step row on, the final summary's too: the run
    ends `failed` for the caller, the folder keeps `running` and reads `crashed` once the
    process is gone, and resumes once the folder is writable again."""
    faults = Faults(monkeypatch, errno.EROFS)
    armed = []
    faults.append_rule = lambda row: bool(armed)
    # Epoch 1's checkpoints, handed to the background writer before, may still be under way
    # when epoch 2 starts: those complete (else no checkpoint is there to resume from at all).
    epoch_1_checkpoint = {("last.pt", 1), ("best.pt", 1)}
    faults.fsync_rule = lambda name, n: bool(armed) and (name, n) not in epoch_1_checkpoint

    def arm(event):  # told after the writer: the step row of epoch 2 step 1 is the first to fail
        if isinstance(event, Step) and event.epoch == 2:
            armed.append(True)

    run, ended = _start(tiny_data, tmp_path / "runs", on_event=arm)
    faults.off()
    assert ended.status == "failed"
    assert ended.message.endswith("(summary.json not updated either: the run reads as crashed)")
    _check_failed_folder(run, ended.message, "metrics.jsonl", "Read-only file system", 1)
    assert f"make {run.path} writable, then" in ended.message
    summary = run.summary()
    assert summary["status"] == "running" and summary["epochs_done"] == 1
    monkeypatch.setattr(store, "pid_alive", lambda pid: False)  # as once this process is gone
    assert run.status() == "crashed"
    _resume_and_compare(run, reference)


def test_an_unwritable_last_pt_and_summary_end_the_cli_with_exit_1_and_one_line(
    tiny_data, tmp_path, monkeypatch
):
    """EACCES on last.pt at epoch 2 and on the final summary: exit 1, the line printed, no
    traceback."""
    faults = Faults(monkeypatch, errno.EACCES)
    failing = []

    def rule(name, n):
        if name == "last.pt" and n == 2:
            failing.append(True)
        # summaries: the new folder's, the start's, one per epoch, then the final one (the 6th);
        # epoch 3's may come before or after the background write of last.pt fails
        return bool(failing) and (name == "last.pt" or name == "summary.json" and n >= 6)

    faults.fsync_rule = rule
    runs_dir = tmp_path / "runs"
    result = invoke(
        "run", "scratch", "--data", tiny_data, "--runs-dir", runs_dir, *small_set_options(**CFG)
    )
    faults.off()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    (folder,) = runs_dir.iterdir()
    printed = "".join(result.output.splitlines())  # the console wraps at its width
    assert f"cannot write {folder / 'last.pt'} (Permission denied;" in printed
    assert "summary.json not updated either: the run reads as crashed" in printed
    assert Checkpoint.load(folder).epoch == 1
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_the_message_names_the_file_the_reason_and_the_free_space(tmp_path):
    exc = StorageError(tmp_path / "RUN" / "last.pt", OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert MESSAGE.match(str(exc))["hint"] == "free space or raise the quota"
    assert str(exc).endswith("then `tui-trainer run --resume RUN`")
    assert exc.errno == errno.EDQUOT and exc.free_bytes > 0  # of tmp_path's file system


def test_a_checkpoint_that_fills_the_disk_part_way_raises_enospc_and_keeps_the_old_one(
    tmp_path, monkeypatch
):
    """A write(2) that stops part-way (a disk filling up): torch's zip writer would turn it into
    a RuntimeError ("unexpected pos"); the save raises the ENOSPC, removes its temp file and the
    previous file stays. (Checked too on a real 150 MB tmpfs, by hand: see the branch's report.)"""
    from tui_trainer.files import save_checkpoint_atomic

    target = tmp_path / "last.pt"
    save_checkpoint_atomic(target, {"w": torch.zeros(10)})
    budget, real_write = [100_000], os.write

    def filling(fd, data):
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, memoryview(data)[: budget[0]])
        budget[0] -= n
        return n

    monkeypatch.setattr(os, "write", filling)
    with pytest.raises(OSError) as raised:
        save_checkpoint_atomic(target, {"w": torch.ones(1_000_000)})
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.zeros(10))
