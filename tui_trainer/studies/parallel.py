"""`sweep NAME --parallel N [--gpus 0,1]`: up to N members at once, each in a child process.

Each child is `python -m tui_trainer sweep NAME --member K` with the parent's `--set`, `--seeds`
and `--device`, the absolute `--data` and `--runs-dir`, and the parent's start time as the
hidden `--since`. The child claims its member itself (studies/members.py), so a second sweep
process or a Slurm task on the same runs folder never trains it twice: a member the child finds
completed or claimed elsewhere just ends it (exit 0 or 3), and one that failed in another
process after the parent started is final for this invocation (exit 1), as it is for a plain
sweep, however late the child starts. The parent keeps the slots busy in member order and
starts each member once.

Slots (`plan_slots`):
- `--gpus 0,1`: slot i runs on GPU gpus[i % len(gpus)] through CUDA_VISIBLE_DEVICES (the
  parent's own CUDA_VISIBLE_DEVICES is honoured: index 0 is the first GPU it lists). N defaults
  to the number of GPUs given; N above it puts several children on a GPU, in turn (small models
  share an H100 well; memory is the user's call).
- Without `--gpus`, on a machine with CUDA (and `--device` not cpu/mps): every GPU, as above.
- Otherwise the CPU: the cores are split between the children, `--set threads=<cores // N>`
  (at least 1), unless the user gave `--set threads` (theirs wins). `threads` is not part of a
  member's identity (runs/groups.UNCOMPARED_KEYS), so it does not change which run counts.
  GPU children get `threads=<cores // N>` too: their decode and augmentation run on the CPU.

Each child's stdout and stderr go to `<runs>/.sweep-logs/<sweep>/<member>.log` (appended, one
header line per start; a dot-folder: `list_runs` never lists it). Children start with stdin from
/dev/null, in a session of their own, so the terminal's Ctrl-C reaches the parent alone.

Before any child starts, the parent fills the decode cache (`fill_decode_cache`): one decode
per distinct image list and size among the members still to run, so N children do not decode
the same images N times at once; each child then reads the cache entry.

Stopping (`SweepPool.run`): `stop` set (the first Ctrl-C or SIGTERM) sends SIGINT once to every
live child, which ends its member cleanly (`interrupted`, its last.pt kept, resumable), and starts
no new child; `abort` set (a second Ctrl-C) sends SIGINT again, the children's own hard stop
(their run folders then read crashed, resumable from the last epoch), and SIGKILL to any child
still alive KILL_AFTER seconds later. If the parent dies (killed, or its terminal hung up), each
child gets SIGHUP from the kernel (`stop_with_parent`: prctl PR_SET_PDEATHSIG on Linux, asked
for by the child itself as it starts) and stops cleanly as on a first Ctrl-C; elsewhere the
children go on as detached work, which the TUI and `sweep --dry-run` still show.

Progress: every POLL_SECONDS the pool reads the runs folder (`studies.sweeps.member_states` and
each member's epoch rows), the same source the TUI reads, and hands the front end a typed
`PoolSnapshot`; nothing here prints.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from tui_trainer.errors import UserError
from tui_trainer.inside import file_name, folder_inside, open_append, refuse_links
from tui_trainer.runs.detached import LOG_ENV
from tui_trainer.studies.sweeps import SweepMember

LOGS_DIR = ".sweep-logs"  # a dot-folder in the runs folder: never a run (no config.json)
PARENT_ENV = "TUI_TRAINER_SWEEP_PARENT"  # the parent's pid, in a child's environment
MAX_PARALLEL = 256  # children at once: more would exhaust memory long before any GPU count
POLL_SECONDS = 1.0  # how often the runs folder is read for progress
TICK_SECONDS = 0.2  # how often children are reaped and signals forwarded
KILL_AFTER = 10.0  # seconds between the hard stop's SIGINT and SIGKILL
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# what a child gets when its parent dies: a child runs with no terminal, so no real hangup
PARENT_SIGNAL = signal.SIGHUP


@dataclass(frozen=True)
class Slot:
    """Where one child runs: a GPU (the CUDA_VISIBLE_DEVICES value) or the CPU, and the
    `threads` it is given (None: the members' own)."""

    index: int  # 0-based
    gpu: str | None
    threads: int | None

    def describe(self) -> str:
        where = f"GPU {self.gpu}" if self.gpu is not None else "cpu"
        if self.threads is None:
            return where
        return f"{where}, {self.threads} thread{'s' if self.threads != 1 else ''}"


def parse_gpus(text: str) -> list[int]:
    """`--gpus 0,1` as indices, or UserError."""
    try:
        gpus = [int(part) for part in text.split(",")]
    except ValueError:
        gpus = []
    if not gpus or any(g < 0 for g in gpus):
        raise UserError(f"--gpus {text!r}: give GPU indices separated by commas, e.g. --gpus 0,1")
    if len(set(gpus)) != len(gpus):
        raise UserError(
            f"--gpus {text}: a GPU is named twice: name each once (--parallel N above the "
            "number of GPUs puts several members on each)"
        )
    return gpus


def plan_slots(
    parallel: int | None,
    gpus: Sequence[int] | None,
    *,
    device_count: int,
    cores: int,
    device: str | None = None,
    user_threads: bool = False,
    visible: str | None = None,
) -> list[Slot]:
    """The children's slots (see the module's docstring), or UserError for bad options.
    `device_count`: the GPUs torch sees; `visible`: the parent's CUDA_VISIBLE_DEVICES."""
    if parallel is not None and parallel < 1:
        raise UserError(f"--parallel {parallel}: give at least 1 member at once, e.g. --parallel 2")
    if parallel is not None and parallel > MAX_PARALLEL:
        raise UserError(
            f"--parallel {parallel}: give at most {MAX_PARALLEL} (each member is a process "
            "holding its own model and images), e.g. --parallel 4"
        )
    if gpus is not None:
        _check_gpus(gpus, device_count, device)
    elif device_count > 0 and device not in ("cpu", "mps"):
        gpus = list(range(device_count))
    count = parallel or (len(gpus) if gpus else 1)
    threads = None if user_threads else max(1, cores // count)
    names = _visible_names(visible, device_count)
    return [Slot(i, names[gpus[i % len(gpus)]] if gpus else None, threads) for i in range(count)]


def _check_gpus(gpus: Sequence[int], device_count: int, device: str | None) -> None:
    if device in ("cpu", "mps"):
        raise UserError(f"--gpus with --device {device}: drop one of the two")
    missing = [g for g in gpus if g >= device_count]
    if not missing:
        return
    if device_count == 0:
        raise UserError(
            f"--gpus {missing[0]}: this machine has no CUDA GPU (torch.cuda.device_count() "
            "is 0): drop --gpus to split the CPU cores between the members"
        )
    raise UserError(
        f"--gpus {missing[0]}: there is no such GPU, this machine has {device_count} "
        f"(0 to {device_count - 1})"
    )


def _visible_names(visible: str | None, device_count: int) -> list[str]:
    """The CUDA_VISIBLE_DEVICES value for each GPU index torch sees in the parent."""
    listed = [v.strip() for v in (visible or "").split(",") if v.strip()]
    if len(listed) >= device_count:
        return listed[:device_count]
    return [str(i) for i in range(device_count)]


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
    """The child's environment: its parent, its GPU, and its log, which the child links into
    its run folder as console.log (runs/detached.py: the same as a detached run's log, and
    not the log of a detached parent this environment may have come from)."""
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
    names = _log_parts(sweep, member)
    return Path(runs_dir).joinpath(*names)


def _log_parts(sweep: str, member: SweepMember) -> tuple[str, str, str]:
    return LOGS_DIR, file_name(sweep, "sweep"), f"{file_name(member.name, 'member')}.log"


def check_logs(runs_dir: Path, sweep: str, members: Sequence[SweepMember]) -> None:
    """UserError, before anything is written, when a member's log or a folder on its way is a
    link (or a FIFO, ...) someone planted in the shared runs folder."""
    for member in members:
        refuse_links(Path(runs_dir), *_log_parts(sweep, member))


@contextlib.contextmanager
def stop_with_parent(stop: threading.Event) -> Iterator[bool]:
    """In a child, while the block runs: `stop` is set when the parent sweep dies (Linux: the
    kernel sends PARENT_SIGNAL, prctl PR_SET_PDEATHSIG). Yields False when the parent is
    already gone (the child should not start), True otherwise, also where the call is not
    available (the child then goes on as detached work). Its own signal, not SIGTERM: the
    kernel may send it more than once as the parent's threads exit, and only a first SIGTERM
    is a clean stop."""
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
    status: str  # studies.sweeps: pending, or its run's status (`running` while claimed)
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
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
