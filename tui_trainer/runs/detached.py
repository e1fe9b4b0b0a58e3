"""Runs that outlive the console: a `tui-trainer run` (or `sweep`) child in its own session, and
what the console needs to find, follow and stop it.

A detached start spawns `python -m tui_trainer run PRESET --set ...` (or `sweep NAME --set ...`)
with `start_new_session=True`: the child has no controlling terminal, so neither the console's
end nor a dropped SSH connection (SIGHUP to the terminal's session) reaches it. Its stdin is
/dev/null, its stdout and stderr go to `<runs>/.detached/<stamp>-<token>.log` (a dot-folder:
`list_runs` never lists it), written from the first line on, before any run folder exists (the
first decode of the images can take minutes).

The log in the run folder: the child is told its log's path in $TUI_TRAINER_DETACHED_LOG, and
the CLI (`cli/listen.follow`) hard-links that file into each run folder it trains as
`console.log` the moment the run starts (`link_log`): one file under two names, so the folder's
copy has everything, the decode before the folder existed included, and grows as the child
writes. A sweep's members all link the one sweep log. Where a hard link is refused (another
filesystem, no links) a symlink is made instead.

Finding the run a detached start trains: the console keeps the child's pid; a run folder whose
summary.json names that pid (or a process the child started: `sweep --parallel N` trains its
members in processes of its own) and this host, and whose session began after the spawn (its
`started_at`, or `resumed_at` for a folder resumed: `runs/resume.rewind` writes both the pid and
that time, config.json stays as old as the run's first start), is its run. For a sweep, the one
whose session began last is the member in training, fresh or resumed. The console is the child's
parent until it reaps it, so that pid cannot be another process's meanwhile; the time keeps out
a folder an earlier process of the same pid left. A console started later finds a detached run
like any run training elsewhere: `running` in the runs folder.

Stopping a run followed from its folder (`holder`, `interrupt`): owner.json (runs/lock.py) names
the process that trains it; SIGINT to it is the child's clean stop (`interrupted`, checkpoint of
the last finished epoch kept, resumable). Only a process on this host that `lock.same_process`
confirms is signalled: a pid from another host, or one that ended and was reused, never is.
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

import psutil

from tui_trainer.inside import folder_inside, open_append
from tui_trainer.runs import lock
from tui_trainer.runs.store import Run, list_runs

DETACHED_DIR = ".detached"
LOG_ENV = "TUI_TRAINER_DETACHED_LOG"  # the child's own log: linked into its run folders
LOG_NAME = "console.log"
CLOCK_SLACK_S = 2.0  # a session begun this long before the spawn still counts (mtime rounding)


def session_start(summary: dict) -> float:
    """When the summary's latest session began: `resumed_at` if resumed since `started_at`."""
    times = [summary.get(key) for key in ("started_at", "resumed_at")]
    numbers = [float(t) for t in times if isinstance(t, int | float) and not isinstance(t, bool)]
    return max(numbers, default=float("-inf"))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("-inf")


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

    def find_run(self) -> Run | None:
        """The run folder this child (or a process it started) began a session in last
        (started or resumed: a sweep's member in training), None before it has one."""
        host, since, family = socket.gethostname(), self.started_at - CLOCK_SLACK_S, self.family()
        latest: tuple[float, Run] | None = None
        # every folder, not the newest few: a sweep resumes members however old their folders
        for run in list_runs(self.runs_dir):
            if _mtime(run.summary_path) < since:
                continue  # not written since the spawn: a stat spares reading it
            summary = run.summary()
            if str(summary.get("pid")) not in family or summary.get("host") != host:
                continue
            began = session_start(summary)
            if began >= since and (latest is None or began >= latest[0]):
                latest = (began, run)
        return latest[1] if latest is not None else None

    def family(self) -> set[str]:
        """The child's pid and its descendants' (the member processes of `--parallel`)."""
        pids = {str(self.pid)}
        with contextlib.suppress(psutil.Error):
            pids |= {str(p.pid) for p in psutil.Process(self.pid).children(recursive=True)}
        return pids

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the child's output: why a child that ended without a run did."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " / ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def _set_options(overrides: dict[str, str]) -> list[str]:
    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]


def run_command(
    preset: str, overrides: dict[str, str], *, data_dir: Path, runs_dir: Path
) -> list[str]:
    """`tui-trainer run PRESET --set ...` with absolute folders, for this interpreter."""
    return [
        sys.executable,
        "-m",
        "tui_trainer",
        "run",
        preset,
        *_set_options(overrides),
        "--data",
        str(Path(data_dir).resolve()),
        "--runs-dir",
        str(Path(runs_dir).resolve()),
    ]


def resume_command(
    run_id: str, *, runs_dir: Path, device: str | None = None
) -> list[str]:
    """`tui-trainer run --resume RUN_ID`: the run's own config and recorded data folder."""
    command = [sys.executable, "-m", "tui_trainer", "run", "--resume", run_id]
    if device:
        command += ["--device", device]
    return command + ["--runs-dir", str(Path(runs_dir).resolve())]


def sweep_command(
    name: str,
    overrides: dict[str, str],
    *,
    seeds: int | None,
    data_dir: Path,
    runs_dir: Path,
    parallel: int | None = None,
) -> list[str]:
    """`tui-trainer sweep NAME --set ... [--seeds N] [--parallel N]`: the members still to run,
    one by one, or `parallel` of them at once (the command spreads them over the GPUs)."""
    command = [sys.executable, "-m", "tui_trainer", "sweep", name, *_set_options(overrides)]
    if seeds is not None:
        command += ["--seeds", str(seeds)]
    if parallel is not None:
        command += ["--parallel", str(parallel)]
    return command + [
        "--data",
        str(Path(data_dir).resolve()),
        "--runs-dir",
        str(Path(runs_dir).resolve()),
    ]


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


def new_log_path(runs_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(runs_dir).resolve() / DETACHED_DIR / f"{stamp}-{secrets.token_hex(3)}.log"


def spawn(command: list[str], runs_dir: Path, label: str) -> DetachedStart:
    """Start `command` in its own session, output to a new log in `<runs>/.detached/`.
    Raises OSError when the log cannot be created or the interpreter not started."""
    log_path = new_log_path(runs_dir)
    folder_inside(log_path.parents[1], DETACHED_DIR)  # a planted link is refused (OSError)
    env = {**os.environ, LOG_ENV: str(log_path), "PYTHONUNBUFFERED": "1"}
    started_at = time.time()
    with os.fdopen(open_append(log_path), "ab") as log:  # the child gets its own copy
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
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


# --- stopping a run followed from its folder -----------------------------------------------


@dataclass(frozen=True)
class Holder:
    """The process training a run folder, and whether this console may signal it."""

    pid: int | None
    host: str
    stoppable: bool
    why: str = ""  # when not stoppable: one line saying why and where to stop it


def holder(run: Run) -> Holder:
    """Who trains `run`, from its owner.json; stoppable only when it is that process here."""
    owner = lock.read_owner(run.path)
    pid, host = owner.get("pid"), str(owner.get("host") or "")
    if not owner or not isinstance(pid, int):
        return Holder(None, host, False, f"{run.id} names no process training it")
    if host != socket.gethostname():
        return Holder(pid, host, False, f"{run.id} trains on {host} (pid {pid}): stop it there")
    if not lock.same_process(owner):
        return Holder(pid, host, False, f"{run.id}: its process (pid {pid}) is gone")
    return Holder(pid, host, True)


def interrupt(who: Holder) -> None:
    """SIGINT, the child's clean stop. Raises ValueError for a holder not stoppable from here,
    ProcessLookupError when it ended meanwhile."""
    if not who.stoppable or who.pid is None:
        raise ValueError(who.why or "not a process of this host")
    os.kill(who.pid, signal.SIGINT)
