"""The pool behind `sweep NAME --parallel N`: up to N members at once, each a child process
`tui-trainer sweep NAME --member K` that claims its member itself (studies/members.py), so
sweeps and Slurm tasks sharing a runs folder never train one twice. A child runs in a session of
its own (the terminal's Ctrl-C reaches the parent alone) with its output in `<runs>/.sweep-logs/`;
the parent forwards its stops (`SweepPool._forward`) and reads progress from the runs folder, as
the TUI does.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from tui_trainer.inside import file_name, folder_inside, open_append, refuse_links
from tui_trainer.runs.detached import LOG_ENV, start_session
from tui_trainer.studies.slots import Slot
from tui_trainer.studies.sweep_file import Sweep, SweepMember
from tui_trainer.studies.sweeps import MemberState, member_states

LOGS_DIR = ".sweep-logs"  # a dot-folder in the runs folder: never a run (no config.json)
PARENT_ENV = "TUI_TRAINER_SWEEP_PARENT"  # the parent's pid, in a child's environment
POLL_SECONDS = 1.0  # how often the runs folder is read for progress
TICK_SECONDS = 0.2  # how often children are reaped and signals forwarded
KILL_AFTER = 10.0  # seconds between the hard stop's SIGINT and SIGKILL
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# what a child gets when its parent dies: a child runs with no terminal, so no real hangup
PARENT_SIGNAL = signal.SIGHUP


@dataclass(frozen=True)
class ChildOptions:
    """What every child gets from the parent's command line."""

    data_dir: Path
    runs_dir: Path
    set_options: tuple[str, ...] = ()  # the parent's --set values, as given
    seeds: int | None = None
    device: str | None = None
    since: float | None = None  # the parent's start (time.time()): the children's `since`


def child_command(sweep: str, index: int, options: ChildOptions, slot: Slot) -> list[str]:
    """The child's argv: `sweep NAME --member K` with the parent's options (`index` 1-based)."""
    command = [sys.executable, "-m", "tui_trainer", "sweep", sweep, "--member", str(index)]
    command += ["--data", str(Path(options.data_dir).absolute())]
    command += ["--runs-dir", str(Path(options.runs_dir).absolute())]
    for value in options.set_options:
        command += ["--set", value]
    if slot.threads is not None:
        command += ["--set", f"threads={slot.threads}"]
    if options.seeds is not None:
        command += ["--seeds", str(options.seeds)]
    if options.device:
        command += ["--device", options.device]
    if options.since is not None:
        command += ["--since", repr(options.since)]  # repr: the float back exactly
    return command


def child_env(
    slot: Slot, base: dict[str, str] | None = None, *, log: Path | None = None
) -> dict[str, str]:
    """The child's environment: its parent, its GPU, and its own log to link into its run
    folder (not the log of a detached parent this environment may come from)."""
    env = dict(os.environ if base is None else base)
    env[PARENT_ENV] = str(os.getpid())
    if log is not None:
        env[LOG_ENV] = str(log)
    env["PYTHONUNBUFFERED"] = "1"  # the log shows each line as it is written
    if slot.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot.gpu
    return env


def log_path(runs_dir: Path, sweep: str, member: SweepMember) -> Path:
    """`<runs>/.sweep-logs/<sweep>/<member>.log`, each name made one safe path component (a
    member's `name` is input: `../..` or an absolute path must not lead out of the folder)."""
    return Path(runs_dir).joinpath(*_log_parts(sweep, member))


def _log_parts(sweep: str, member: SweepMember) -> tuple[str, str, str]:
    return LOGS_DIR, file_name(sweep, "sweep"), f"{file_name(member.name, 'member')}.log"


def check_logs(runs_dir: Path, sweep: str, members: Sequence[SweepMember]) -> None:
    """UserError, before anything is written, when a member's log or a folder on its way is a
    link (or a FIFO, ...) someone planted in the shared runs folder."""
    for member in members:
        refuse_links(Path(runs_dir), *_log_parts(sweep, member))


@contextlib.contextmanager
def stop_with_parent(stop: threading.Event) -> Iterator[bool]:
    """In a child, while the block runs: `stop` is set when the parent sweep dies (Linux prctl
    PR_SET_PDEATHSIG; elsewhere the child goes on as detached work). Yields False when the
    parent is already gone (the child should not start). Not SIGTERM: the kernel may send the
    signal more than once as the parent's threads exit, and only a first SIGTERM is clean."""
    expected = os.environ.get(PARENT_ENV)
    main = threading.current_thread() is threading.main_thread()
    if not expected or not main or not sys.platform.startswith("linux"):
        yield True
        return
    previous = signal.signal(PARENT_SIGNAL, lambda signum, frame: stop.set())
    try:
        _death_signal(PARENT_SIGNAL)
        yield str(os.getppid()) == expected  # died before the prctl: no signal would come
    finally:
        _death_signal(0)
        signal.signal(PARENT_SIGNAL, previous)


def _death_signal(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the child outlives its parent
        pass


class ChildState(StrEnum):
    QUEUED = "queued"  # waiting for a slot
    RUNNING = "running"  # its child process is alive
    ENDED = "ended"  # its child exited (`exit_code`)
    NOT_STARTED = "not started"  # left queued by a stop


@dataclass(frozen=True)
class MemberProgress:
    """One member as the runs folder and the pool see it."""

    index: int  # the member's # in the full order (`--member K`)
    name: str
    status: str  # sweeps.PENDING, or its run's status (`running` while claimed)
    child: ChildState | None  # None: not this sweep's to run (done, or trained elsewhere)
    epoch: int = 0  # epochs finished by its run
    epochs: int = 0
    val_acc: float | None = None  # of its last finished epoch
    run_id: str | None = None
    pid: int | None = None
    slot: Slot | None = None
    log: Path | None = None
    exit_code: int | None = None


class StopLevel(StrEnum):
    NONE = "none"
    STOPPING = "stopping"  # SIGINT sent once: the children end cleanly
    ABORTING = "aborting"  # the hard stop sent


@dataclass(frozen=True)
class PoolSnapshot:
    members: tuple[MemberProgress, ...]
    stop: StopLevel = StopLevel.NONE
    done: bool = False  # the last snapshot: no child left

    @property
    def running(self) -> int:
        return sum(m.child is ChildState.RUNNING for m in self.members)


Spawn = Callable[[list[str], dict[str, str], Path], subprocess.Popen]


def spawn_child(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A child in a session of its own (no terminal Ctrl-C), its output appended to `log`."""
    # the log's folders are made and checked from the runs folder down (no link followed)
    folder_inside(log.parents[2], *log.parts[-3:-1])
    with os.fdopen(open_append(log), "a", encoding="utf-8") as handle:
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        handle.write(f"=== {stamp} {' '.join(command)}\n")
        handle.flush()
        return start_session(command, env, handle)


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
        pending = abort if stop.is_set() else stop
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
        """`stop`: SIGINT once to the live children (a clean, resumable stop); `abort`: SIGINT
        again (their hard stop), then SIGKILL to any still alive KILL_AFTER seconds later."""
        if stop.is_set() and self._level is StopLevel.NONE:
            self._level = StopLevel.STOPPING
            for child in self._live():
                _send(child, signal.SIGINT)
        if abort.is_set() and self._level is not StopLevel.ABORTING:
            self._level = StopLevel.ABORTING
            for child in self._live():
                _send(child, signal.SIGINT)
                child.kill_at = time.monotonic() + KILL_AFTER
        for child in self._live():
            if child.kill_at is not None and time.monotonic() >= child.kill_at:
                _send(child, signal.SIGKILL, group=True)

    def snapshot(self, done: bool = False) -> PoolSnapshot:
        states = member_states(self.sweep, self.options.runs_dir)
        rows = tuple(self._progress(i, s) for i, s in enumerate(states, 1))
        return PoolSnapshot(rows, self._level, done)

    def _progress(self, index: int, state: MemberState) -> MemberProgress:
        epoch, val_acc = _last_epoch(state)
        row = MemberProgress(
            index=index,
            name=state.member.name,
            status=str(state.status),
            child=None,
            epoch=epoch,
            epochs=state.member.config.epochs,
            val_acc=val_acc,
            run_id=state.run.id if state.run is not None else None,
        )
        child = self._children.get(index)
        if child is None:
            return row
        stopped = child.state is ChildState.QUEUED and self._level is not StopLevel.NONE
        return dataclasses.replace(
            row,
            child=ChildState.NOT_STARTED if stopped else child.state,
            pid=getattr(child.process, "pid", None),
            slot=child.slot,
            log=child.log,
            exit_code=child.exit_code,
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
