"""Checkpoints off the training thread: each epoch's state is copied, then one background thread
saves it (last.pt, then best.pt when the best changed) while the next epoch trains.

The ordering rule a resume relies on (`runs/resume.py` reads last.pt and drops every metrics row
past its epoch):

1. Epoch N's metrics row and summary heartbeat are written (by the training thread) *before*
   epoch N's checkpoint is handed to the writer. A row may exist with no checkpoint for it (a
   kill before or during the write): the resume drops it and trains that epoch again, to the
   same bits. A checkpoint whose row is missing happens only when the row's write failed or in
   folders of older versions; the resume rebuilds it from the history last.pt keeps.
2. The writer saves last.pt@N first, then best.pt@N if epoch N was the best, each with an atomic
   temp file + fsync + rename. Killed between the two, last.pt@N's own weights are the best.
3. One write at a time: before epoch N+1's state is copied the training thread waits for epoch
   N's write to finish. So while epoch N+1 trains, last.pt holds epoch N, or N-1 while N's write
   is still under way.
4. The run is marked `completed`, `interrupted`, `diverged` or `failed` only after the writer has
   drained: the test pass and the final summary come after the last checkpoint is on disk. A write
   that failed (disk full...) ends the run `failed` with its one line (the file, the free space).
5. A completed run's last.pt is removed after its summary says `completed` (`runs/launch.py`,
   unless `keep_last=true`): a kill in between leaves a completed folder holding a last.pt,
   which nothing reads (a completed run never resumes).

Memory: a snapshot is one extra copy, on the CPU, of the weights and the optimizer's momentum
(about 0.5 GB for AlexNet on Caltech-101), alive until its write ends. Waiting for the previous
write before copying keeps it to one copy at a time. On CUDA the copy goes into pinned memory
asynchronously (ordered before the next step's kernels on the same stream, so the in-place SGD
update cannot overtake it); the writer waits on a CUDA event before reading it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tui_trainer.errors import StorageError
from tui_trainer.train.checkpoint import Checkpoint, TrainState, save_best

THREAD_NAME = "checkpoint-writer"
WRITER_NICE = 19  # the writer thread's niceness on Linux: training has the cores first


@dataclass(frozen=True)
class BestWeights:
    """best.pt's contents: weights already copied to the CPU when they became the best."""

    weights: dict[str, torch.Tensor]
    epoch: int
    val_acc: float


@dataclass(frozen=True)
class Snapshot:
    """One epoch's checkpoints, copied off the live tensors: nothing here changes once taken."""

    last: Checkpoint
    best: BestWeights | None  # None: best.pt stays as it is
    ready: torch.cuda.Event | None = None  # set once the CUDA -> CPU copies have landed

    @property
    def epoch(self) -> int:
        return self.last.epoch

    def write(self, run_dir: Path) -> None:
        if self.ready is not None:
            self.ready.synchronize()
        self.last.save(run_dir)
        if self.best is not None:
            save_best(run_dir, self.best.weights, self.best.epoch, self.best.val_acc)


def take_snapshot(  # noqa: PLR0913 - the parts of one training state
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    state: TrainState,
    seconds: float,
    best: BestWeights | None,
) -> Snapshot:
    """Copy everything a checkpoint holds, now: call it before the next optimizer step."""
    devices: set[torch.device] = set()
    last = Checkpoint(
        _copied(model.state_dict(), devices),
        _copied(optimizer.state_dict(), devices),
        _copied(scheduler.state_dict(), devices),
        _copied(scaler.state_dict(), devices),
        dataclasses.replace(state, history=[dict(row) for row in state.history]),
        seconds,
    )
    ready = None
    cuda = [d for d in devices if d.type == "cuda"]
    if cuda:
        ready = torch.cuda.Event()
        ready.record(torch.cuda.current_stream(cuda[0]))
    return Snapshot(last, best, ready)


def _copied(value: Any, devices: set[torch.device]) -> Any:
    """`value` with every tensor copied to the CPU and every container rebuilt; `devices`
    collects the devices copied from (CUDA copies are asynchronous)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        devices.add(tensor.device)
        if tensor.device.type == "cuda":  # into pinned memory, without waiting
            return tensor.to("cpu", non_blocking=True)
        return tensor.to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _copied(v, devices) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copied(v, devices) for v in value)
    return value  # numbers, strings, None: immutable


def _yield_cores() -> None:
    """Lower the calling thread's priority (Linux: a thread is a task of its own). On a machine
    with few cores a writer serialising half a gigabyte beside training stalls each op's whole
    OpenMP team; at the lowest priority it runs in the gaps and the wait before the next copy."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)


class CheckpointWriter:
    """One background thread that writes snapshots into `run_dir`, one at a time.

    Use it as a context manager: leaving the block (normally, by a stop, a divergence, an error
    or KeyboardInterrupt) waits for the write under way and ends the thread. A write's failure is
    raised in the training thread by the next `submit` or `drain`, or when the block ends."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._jobs: queue.Queue[Snapshot | None] = queue.Queue(maxsize=1)
        self._idle = threading.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def submit(self, snapshot: Snapshot) -> None:
        """Hand `snapshot` over, once the previous write is done."""
        self.drain()
        self._idle.clear()
        self._jobs.put(snapshot)

    def wait(self) -> BaseException | None:
        """Block until no write is under way; the failure of one, if any."""
        self._idle.wait()
        return self._error

    def drain(self) -> None:
        """Wait for the write under way; raise its failure (a StorageError when the disk or the
        folder refused it) here, in the training thread."""
        error = self.wait()
        if error is not None:
            raise error

    def close(self) -> None:
        """Wait for the write under way and end the thread. Safe to call twice."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.wait()
        self.close()
        # A failed write outranks a stop or a divergence: the user must learn the folder's
        # checkpoint is older than its rows. A StorageError of the training thread (a metrics
        # row) is already the one line; KeyboardInterrupt and the like go on as they are.
        replaces = exc_type is None or (
            issubclass(exc_type, Exception) and not isinstance(exc, StorageError)
        )
        if replaces and self._error is not None and self._error is not exc:
            raise self._error

    def _work(self) -> None:
        _yield_cores()
        while (snapshot := self._jobs.get()) is not None:
            try:
                if self._error is None:
                    snapshot.write(self.run_dir)
            except BaseException as exc:  # noqa: BLE001 - raised in the training thread instead
                self._error = exc
            finally:
                snapshot = None  # the copy's memory goes before the next one is taken
                self._idle.set()
