"""Runs that outlive the console: a `run` or `sweep` child in its own session (no controlling
terminal, so neither the console's end nor a dropped SSH connection reaches it), and what the
console needs to find, follow and stop it.

The child's output goes to `<runs>/.detached/<stamp>-<token>.log` from its first line, before any
run folder exists; the CLI hard-links it into each run folder it trains as `console.log`
(`link_log`; a symlink where links are refused). Beside the log, the child rewrites a launch
record, {"run_id", "pid"}, each time it starts or resumes a run (the members of a `--parallel`
sweep inherit its path): the console reads that file (`find_run`) instead of searching for the run.
A stop is SIGINT to the live owner on this host that owner.json names (`holder`, `interrupt`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tui_trainer.events import RunStatus
from tui_trainer.files import read_json, write_json_atomic
from tui_trainer.inside import folder_inside, open_append
from tui_trainer.runs.owner import Owner
from tui_trainer.runs.store import Run

DETACHED_DIR = ".detached"
LOG_ENV = "TUI_TRAINER_DETACHED_LOG"  # the child's own log: linked into its run folders
LAUNCH_ENV = "TUI_TRAINER_LAUNCH_RECORD"  # where the child names the run it trains
LAUNCH_SUFFIX = ".json"
LOG_NAME = "console.log"


@dataclass(frozen=True)
class DetachedStart:
    """A child spawned by `spawn`: what the console shows and polls until its run appears."""

    label: str
    pid: int
    log_path: Path
    runs_dir: Path
    started_at: float
    command: tuple[str, ...]
    process: subprocess.Popen = field(compare=False, repr=False)

    def exit_code(self) -> int | None:
        """None while the child runs; its exit code once it ended (and is reaped)."""
        return self.process.poll()

    @property
    def launch_path(self) -> Path:
        return self.log_path.with_suffix(LAUNCH_SUFFIX)

    def find_run(self) -> Run | None:
        """The run folder this child (or a process it started) began a session in last
        (started or resumed: a sweep's member in training), None before it has one."""
        run_id = read_json(self.launch_path).get("run_id")
        if not isinstance(run_id, str) or run_id in ("", "..") or run_id != Path(run_id).name:
            return None  # a run id is a folder's name, never a path out of the runs folder
        run = Run(self.runs_dir / run_id)
        return run if run.config_path.is_file() else None

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the child's output: why a child that ended without a run did."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " / ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def _set_options(overrides: dict[str, str]) -> list[str]:
    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]


def _command(*args: str, data_dir: Path | None, runs_dir: Path) -> list[str]:
    """`python -m tui_trainer ARGS [--data DIR] --runs-dir DIR`, folders made absolute."""
    data = [] if data_dir is None else ["--data", str(Path(data_dir).resolve())]
    runs = ["--runs-dir", str(Path(runs_dir).resolve())]
    return [sys.executable, "-m", "tui_trainer", *args, *data, *runs]


def run_command(
    preset: str, overrides: dict[str, str], *, data_dir: Path, runs_dir: Path
) -> list[str]:
    """`tui-trainer run PRESET --set ...`."""
    return _command("run", preset, *_set_options(overrides), data_dir=data_dir, runs_dir=runs_dir)


def resume_command(run_id: str, *, runs_dir: Path, device: str | None = None) -> list[str]:
    """`tui-trainer run --resume RUN_ID`: the run's own config and recorded data folder."""
    options = ["--device", device] if device else []
    return _command("run", "--resume", run_id, *options, data_dir=None, runs_dir=runs_dir)


def sweep_command(
    name: str,
    overrides: dict[str, str],
    *,
    seeds: int | None,
    data_dir: Path,
    runs_dir: Path,
    parallel: int | None = None,
) -> list[str]:
    """`tui-trainer sweep NAME --set ... [--seeds N] [--parallel N]`."""
    options = [*_set_options(overrides), *_counts(seeds=seeds, parallel=parallel)]
    return _command("sweep", name, *options, data_dir=data_dir, runs_dir=runs_dir)


def tune_command(
    name: str,
    overrides: dict[str, str],
    *,
    data_dir: Path,
    runs_dir: Path,
    trials: int | None = None,
    parallel: int | None = None,
) -> list[str]:
    """`tui-trainer tune NAME --set ... [--trials N] [--parallel N]`: one worker of the search's
    study, or N (a rerun continues the study: the trials it still needs)."""
    options = [*_set_options(overrides), *_counts(trials=trials, parallel=parallel)]
    return _command("tune", name, *options, data_dir=data_dir, runs_dir=runs_dir)


def _counts(**flags: int | None) -> list[str]:
    """`--flag N` for each count given, in order."""
    return [word for flag, n in flags.items() if n is not None for word in (f"--{flag}", str(n))]


def cuda_gpus() -> int:
    """The CUDA GPUs a child started now would see (NVML, no torch: the console stays light);
    0 without NVML or a driver. CUDA_VISIBLE_DEVICES, when set, is the child's list."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver, no device: NVML raises its own error types
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def start_session(command: list[str], env: dict[str, str], output: IO) -> subprocess.Popen:
    """`command` in a session of its own, out of reach of a terminal's Ctrl-C and hangup, with
    no input and its output into the open file `output`."""
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def spawn(command: list[str], runs_dir: Path, label: str) -> DetachedStart:
    """Start `command` in its own session, output to a new log in `<runs>/.detached/`.
    Raises OSError when the log cannot be created or the interpreter not started."""
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    log_path = Path(runs_dir).resolve() / DETACHED_DIR / f"{stamp}.log"
    folder_inside(log_path.parents[1], DETACHED_DIR)  # a planted link is refused (OSError)
    launch = log_path.with_suffix(LAUNCH_SUFFIX)
    env = {**os.environ, LOG_ENV: str(log_path), LAUNCH_ENV: str(launch), "PYTHONUNBUFFERED": "1"}
    started_at = time.time()
    with os.fdopen(open_append(log_path), "ab") as log:  # the child gets its own copy
        process = start_session(command, env, log)
    return DetachedStart(
        label, process.pid, log_path, Path(runs_dir), started_at, tuple(command), process
    )


# --- the child's side ------------------------------------------------------------------------


def link_log(log_path: Path, run_folder: Path) -> Path | None:
    """Make `run_folder/console.log` the child's log (a hard link, else a symlink); None when
    neither can be made (the log stays in .detached/ alone)."""
    target = Path(run_folder) / LOG_NAME
    if target.exists() or target.is_symlink():
        return target
    try:
        os.link(log_path, target)
    except OSError:
        try:
            target.symlink_to(Path(log_path).resolve())
        except OSError:
            return None
    return target


def own_log() -> Path | None:
    """This process's detached log, when it was started by `spawn`."""
    value = os.environ.get(LOG_ENV)
    return Path(value) if value else None


def own_launch_record() -> Path | None:
    """Where this process names the run it trains, when it (or its parent) was spawned."""
    value = os.environ.get(LAUNCH_ENV)
    return Path(value) if value else None


def note_launch(record: Path, run_id: str) -> None:
    with contextlib.suppress(OSError):  # the console then shows "starting" longer, no more
        write_json_atomic(record, {"run_id": run_id, "pid": os.getpid()})


# --- stopping a run followed from its folder -----------------------------------------------


@dataclass(frozen=True)
class StopTarget:
    """The process training a run folder, and whether this console may signal it."""

    pid: int | None
    host: str
    stoppable: bool
    why: str = ""  # when not stoppable: one line saying why and where to stop it
    status: RunStatus | None = field(default=None, compare=False)  # the owner's, as judged


def stop_target(run: Run) -> StopTarget:
    """Who trains `run`, from its owner.json; stoppable only when it is a live process here."""
    owner = Owner.read(run.path)
    if owner is None or owner.pid is None:
        host = owner.host if owner else ""
        return StopTarget(None, host, False, f"{run.id} names no process training it")
    pid, host, status = owner.pid, owner.host, owner.status
    if host != socket.gethostname():
        why = "stop it there" if owner.live else f"{status}: its heartbeat stopped"
        return StopTarget(pid, host, False, f"{run.id} trains on {host} (pid {pid}): {why}", status)
    if not owner.live:
        return StopTarget(pid, host, False, f"{run.id}: its process (pid {pid}) is gone", status)
    return StopTarget(pid, host, True, status=status)


def interrupt(who: StopTarget) -> None:
    """SIGINT, the child's clean stop. Raises ValueError for a holder not stoppable from here,
    ProcessLookupError when it ended meanwhile."""
    if not who.stoppable or who.pid is None:
        raise ValueError(who.why or "not a process of this host")
    os.kill(who.pid, signal.SIGINT)
