"""The pool behind `sweep NAME --parallel N`: the decode cache filled once, then up to N
children kept running, progress read from the runs folder. studies/parallel.py documents the
slots, the children's command, the signals and the logs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.data.layout import find_layout, make_splits
from tui_trainer.studies.parallel import (
    KILL_AFTER,
    POLL_SECONDS,
    TICK_SECONDS,
    ChildOptions,
    ChildState,
    MemberProgress,
    PoolSnapshot,
    Slot,
    Spawn,
    StopLevel,
    child_command,
    child_env,
    log_path,
    spawn_child,
)
from tui_trainer.studies.sweeps import MemberState, Sweep, SweepMember, member_states


@dataclass(frozen=True)
class DecodeJob:
    """One decode-cache entry the members still to run need: their image list at one size."""

    paths: tuple[Path, ...]
    resize: int
    size: int
    members: tuple[str, ...]


def decode_jobs(members: Sequence[SweepMember], data_dir: Path) -> list[DecodeJob]:
    """One job per distinct (image list, resize, size) among `members`, as `prepare` decodes
    them (the list depends on the classes, the split seed and the validation fraction)."""
    layout = find_layout(data_dir)
    found: dict[tuple, list[str]] = {}
    for member in members:
        config = member.config
        splits = make_splits(layout, config)
        paths = tuple(splits.images_dir / rel for rel, _ in splits.all_items())
        found.setdefault((paths, config.resize, config.image_size), []).append(member.name)
    return [DecodeJob(p, r, s, tuple(names)) for (p, r, s), names in found.items()]


def fill_decode_cache(
    jobs: Sequence[DecodeJob],
    on_job: Callable[[DecodeJob, bool], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Decode each job into the cache (every core), before any child starts; an entry already
    there is only checked. Raises `Stopped` when `stop` is set meanwhile (nothing cached for
    the job it stopped). `on_job(job, done)`: called as a job starts and as it ends."""
    from tui_trainer.data.decode import decode_all  # torch: loaded once a pool decodes, not before

    for job in jobs:
        if on_job is not None:
            on_job(job, False)
        decoded = decode_all(list(job.paths), job.resize, job.size, threads=0, stop=stop)
        del decoded  # the children read the cache: do not hold the images here
        if on_job is not None:
            on_job(job, True)


@dataclass
class _Child:
    index: int  # the member's # in the full order
    member: SweepMember
    log: Path
    slot: Slot | None = None
    process: object | None = None  # subprocess.Popen once started
    exit_code: int | None = None
    kill_at: float | None = None  # the hard stop's SIGKILL deadline

    @property
    def state(self) -> ChildState:
        if self.exit_code is not None:
            return ChildState.ENDED
        return ChildState.RUNNING if self.process is not None else ChildState.QUEUED


class SweepPool:
    """Keeps up to len(slots) children running over `todo` (in order, each started once)."""

    def __init__(
        self,
        sweep: Sweep,
        todo: Sequence[SweepMember],
        slots: Sequence[Slot],
        options: ChildOptions,
        spawn: Spawn = spawn_child,
    ) -> None:
        self.sweep, self.options, self._spawn = sweep, options, spawn
        number = {m.name: i for i, m in enumerate(sweep.members, 1)}
        self._children = {
            number[m.name]: _Child(number[m.name], m, log_path(options.runs_dir, sweep.name, m))
            for m in todo
        }
        self._free = list(slots)
        self._level = StopLevel.NONE

    def run(
        self,
        on_snapshot: Callable[[PoolSnapshot], None],
        stop: threading.Event,
        abort: threading.Event,
    ) -> bool:
        """Run until every member's child ended, or a stop has ended the live ones; snapshots
        every POLL_SECONDS and a last one. True when a stop came (`stop` or `abort`)."""
        polled = 0.0
        while True:
            self._reap()
            level = self._level
            self._forward(stop, abort)
            if self._level is StopLevel.NONE:
                self._fill()
            done = not self._live() and (self._level is not StopLevel.NONE or not self._queued())
            due = time.monotonic() - polled >= POLL_SECONDS or level is not self._level
            if done or due:  # a stop shows at once
                on_snapshot(self.snapshot(done))
                polled = time.monotonic()
            if done:
                return self._level is not StopLevel.NONE
            self._tick(stop, abort)

    def _tick(self, stop: threading.Event, abort: threading.Event) -> None:
        """Wait a tick, woken early by the next signal the pool has not acted on yet."""
        pending = stop if not stop.is_set() else abort
        if pending.is_set():
            time.sleep(TICK_SECONDS)
        else:
            pending.wait(TICK_SECONDS)

    def _live(self) -> list[_Child]:
        return [c for c in self._children.values() if c.state is ChildState.RUNNING]

    def _queued(self) -> list[_Child]:
        return [c for c in self._children.values() if c.state is ChildState.QUEUED]

    def _fill(self) -> None:
        for child in self._queued():
            if not self._free:
                return
            child.slot = self._free.pop(0)
            command = child_command(self.sweep.name, child.index, self.options, child.slot)
            child.process = self._spawn(command, child_env(child.slot, log=child.log), child.log)

    def _reap(self) -> None:
        for child in self._live():
            code = child.process.poll()
            if code is not None:
                child.exit_code = code
                self._free.append(child.slot)
                self._free.sort(key=lambda s: s.index)

    def _forward(self, stop: threading.Event, abort: threading.Event) -> None:
        """Each signal level goes to the live children once; SIGKILL after the hard stop's
        grace."""
        if stop.is_set() and self._level is StopLevel.NONE:
            self._level = StopLevel.STOPPING
            self._signal_live(signal.SIGINT)
        if abort.is_set() and self._level is not StopLevel.ABORTING:
            self._level = StopLevel.ABORTING
            self._signal_live(signal.SIGINT)
            for child in self._live():
                child.kill_at = time.monotonic() + KILL_AFTER
        for child in self._live():
            if child.kill_at is not None and time.monotonic() >= child.kill_at:
                _send(child, signal.SIGKILL, group=True)

    def _signal_live(self, signum: int) -> None:
        for child in self._live():
            _send(child, signum)

    def snapshot(self, done: bool = False) -> PoolSnapshot:
        states = member_states(self.sweep, self.options.runs_dir)
        rows = tuple(self._progress(i, s) for i, s in enumerate(states, 1))
        return PoolSnapshot(rows, self._level, done)

    def _progress(self, index: int, state: MemberState) -> MemberProgress:
        epoch, val_acc = _last_epoch(state)
        child = self._children.get(index)
        mine = {}
        if child is not None:
            stopped = child.state is ChildState.QUEUED and self._level is not StopLevel.NONE
            mine = dict(
                child=ChildState.NOT_STARTED if stopped else child.state,
                pid=getattr(child.process, "pid", None),
                slot=child.slot,
                log=child.log,
                exit_code=child.exit_code,
            )
        return MemberProgress(
            index=index,
            name=state.member.name,
            status=str(state.status),
            epoch=epoch,
            epochs=state.member.config.epochs,
            val_acc=val_acc,
            run_id=state.run.id if state.run is not None else None,
            **{"child": None, **mine},
        )


def _last_epoch(state: MemberState) -> tuple[int, float | None]:
    """(epochs finished, the last one's val acc) from the member's run, (0, None) without."""
    if state.run is None:
        return 0, None
    rows = state.run.epochs()
    if not rows:
        return 0, None
    last = rows[-1]
    value = last.get("val_acc")
    return int(last.get("epoch") or len(rows)), float(value) if value is not None else None


def _send(child: _Child, signum: int, group: bool = False) -> None:
    """Signal a child (its whole session's group for SIGKILL); gone already is fine."""
    try:
        if group:
            os.killpg(child.process.pid, signum)
        else:
            child.process.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass
