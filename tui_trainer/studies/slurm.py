"""An `sbatch` script for a sweep: one Slurm array task per member still to run.

Each task runs `python -m tui_trainer sweep NAME --member $SLURM_ARRAY_TASK_ID` (K is the `#` of
`--dry-run`, which does not change as members complete) with the interpreter, runs folder and
data folder as absolute paths, and the sweep's `--set`/`--seeds`/`--device` options repeated, so
every task resolves the same members. The tasks' claims live in the runs folder, which must be
shared by the login node and the compute nodes (and lock across them: runs/lock.py says what a
network folder needs); the console on the login node, pointed at it, shows the tasks' runs live.

Stopping and resuming (one signal reaches the member: a second is its hard stop, listen.py):
- The time limit: `--signal=B:USR1@SECONDS` has Slurm send USR1 that long before it to the batch
  shell alone; its trap sends SIGTERM once to the member (it stops after the current step,
  `interrupted`, its last.pt kept), waits for it, and if it stopped there (exit 130, not
  completed or failed meanwhile) `scontrol requeue`s the task, whose rerun resumes the member
  from its last epoch (studies/members.py).
- `scancel`, the time limit itself, preemption: Slurm sends SIGTERM to every process of the
  step, so the member has it already; the shell's TERM trap only waits for the member and exits
  with its code (130), requeueing nothing: a cancelled task stays cancelled. A preempted task
  (PreemptMode=REQUEUE) is put back by Slurm itself, as `--requeue` allows, and resumes too.
Without Slurm (`scontrol` absent, no job id) USR1 only stops the member, so
`SLURM_ARRAY_TASK_ID=K bash FILE` runs member K on any machine. Exit code 3 (another process
trains the member) counts as success: nothing was left for that task.

Nothing here submits anything; the text comes from `sbatch_script`.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.errors import UserError

# A full-data AlexNet run peaks near 4 GB RSS (the decoded images, the model, the optimizer and
# a checkpoint being written); twice that leaves room for the allocator and a bigger model.
DEFAULT_MEM = "8G"
SIGNAL_SECONDS = 300  # warning before the time limit: a step, a checkpoint write, the summary
WARNING_SIGNAL = "USR1"  # to the batch shell alone (B:); TERM would reach the member twice
LOG_DIR = "slurm-logs"  # in the runs folder; Slurm does not create an --output folder itself
TIME_FORMAT = re.compile(r"^\d{1,4}:[0-5]\d:[0-5]\d$")
MEM_FORMAT = re.compile(r"^[1-9]\d*[KMGT]?$")
PRESETS_ENV = "TUI_TRAINER_PRESETS"
PARTITION_FORMAT = re.compile(r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$")  # one or a list


@dataclass(frozen=True)
class SlurmJob:
    """What the script asks of Slurm and what each task runs."""

    sweep: str
    members: int  # how many the sweep has (the comment says how many are left of them)
    indices: tuple[int, ...]  # 1-based: the members still to run
    python: Path
    runs_dir: Path
    data_dir: Path
    options: tuple[str, ...] = ()  # --set/--seeds/--device, as given to `sweep`
    partition: str | None = None
    time: str | None = None  # HH:MM:SS
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    mem: str = DEFAULT_MEM
    max_running: int | None = None
    presets_dir: Path | None = None  # $TUI_TRAINER_PRESETS where one was set
    # a search (`tune NAME`): every task is a worker of one study, no --member; `members` and
    # `indices` count the workers
    search: bool = False

    @property
    def log_dir(self) -> Path:
        return self.runs_dir / LOG_DIR


def check_time(text: str | None) -> str | None:
    if text is not None and not TIME_FORMAT.fullmatch(text):
        raise UserError(f"--time {text!r}: give HH:MM:SS, e.g. --time 04:00:00 (four hours)")
    return text


def check_mem(text: str | None) -> str:
    if text is None:
        return DEFAULT_MEM
    if not MEM_FORMAT.fullmatch(text.upper()):
        raise UserError(f"--mem {text!r}: give a size like 8G or 16000M (Slurm's --mem)")
    return text.upper()


def check_partition(text: str | None) -> str | None:
    """A partition name (or a comma list): nothing else may reach an #SBATCH line."""
    if text is not None and not PARTITION_FORMAT.fullmatch(text):
        raise UserError(
            f"--partition {text!r}: give a partition name (letters, digits, - _ .; a comma "
            "list for several), e.g. --partition gpu"
        )
    return text


def check_script_text(sweep: str, runs_dir: Path, data_dir: Path, python: Path) -> None:
    """The names and paths the script's comments and directives hold unquoted: a newline in one
    would start a shell line of its own, a space would cut an #SBATCH line short."""
    texts = {
        "the sweep's name": sweep,
        "--runs-dir": str(runs_dir),
        "--data": str(data_dir),
        "the Python path": str(python),
        PRESETS_ENV: os.environ.get(PRESETS_ENV, ""),
    }
    for what, text in texts.items():
        bad = [ch for ch in text if ord(ch) < 32 or ord(ch) == 127]
        if what == "--runs-dir":
            bad += [ch for ch in text if ch.isspace() or ch in "%"]
        if bad:
            raise UserError(
                f"{what} {text!r} holds {bad[0]!r}, which an sbatch script cannot hold "
                "safely: use a path without it"
            )


MAX_COUNT = 100_000  # tasks, CPUs or GPUs per task: past any cluster, a typo


def check_count(option: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise UserError(f"{option} {value}: give at least 1, or leave it out")
    if value is not None and value > MAX_COUNT:
        raise UserError(f"{option} {value}: give at most {MAX_COUNT}, or leave it out")
    return value


def array_spec(indices: Iterable[int], max_running: int | None = None) -> str:
    """1,2,3,5 -> "1-3,5"; with a throttle "1-3,5%2"."""
    ordered = sorted(set(indices))
    parts: list[str] = []
    start = prev = None
    for i in ordered:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(_span(start, prev))
        start = prev = i
    if start is not None:
        parts.append(_span(start, prev))
    return ",".join(parts) + (f"%{max_running}" if max_running else "")


def _span(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def _directives(job: SlurmJob) -> list[str]:
    lines = [
        f"--job-name={_job_name(job.sweep)}",
        f"--array={array_spec(job.indices, job.max_running)}",
        f"--output={job.log_dir}/%A_%a.out",
        "--open-mode=append",  # a requeued task's log goes on after the first part
        "--ntasks=1",
        f"--mem={job.mem}",
        f"--signal=B:{WARNING_SIGNAL}@{SIGNAL_SECONDS}",
        "--requeue",
    ]
    optional = {
        "partition": job.partition,
        "time": job.time,
        "gpus-per-task": job.gpus_per_task,
        "cpus-per-task": job.cpus_per_task,
    }
    lines += [f"--{key}={value}" for key, value in optional.items() if value is not None]
    return [f"#SBATCH {line}" for line in lines]


def _job_name(sweep: str) -> str:
    return "tt-" + "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in sweep)


def _command(job: SlurmJob) -> str:
    """The member's command, in the background so the traps run while it trains."""
    rest = ["--runs-dir", str(job.runs_dir), "--data", str(job.data_dir), *job.options]
    verb = "tune" if job.search else "sweep"
    words = [str(job.python), "-m", "tui_trainer", verb, job.sweep]
    member = [] if job.search else ["--member", '"$SLURM_ARRAY_TASK_ID"']
    quoted = [*map(shlex.quote, words), *member]
    return " ".join([*quoted, *map(shlex.quote, rest)]) + " &"


TASK = """\
: "${SLURM_ARRAY_TASK_ID:?run this with sbatch, or set SLURM_ARRAY_TASK_ID=K, the # of --dry-run}"

# The member stops cleanly on one SIGTERM (it ends `interrupted`, its last.pt kept); a second is
# its hard stop, so it must get exactly one.
# USR1 (--signal=B:USR1@N): the time limit is near and only this shell knows: stop the member,
# then put this task back in the queue, where it resumes the member.
# TERM (scancel, the time limit, preemption): Slurm sent it to the member too: only wait for it.
# A preempted task is requeued by Slurm itself (--requeue); a cancelled one stays cancelled.
requeue=0
child=""
on_warning() {
    if [ "$requeue" = 0 ] && [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; fi
    requeue=1
}
trap on_warning USR1
trap : TERM

COMMAND
child=$!
wait "$child"
while kill -0 "$child" 2>/dev/null; do  # a trap ended the wait: the member is still stopping
    wait "$child"
done
wait "$child"  # its exit status, kept by bash even when a trap ended the last wait
code=$?
if [ "$requeue" = 1 ] && [ "$code" -eq 130 ]; then  # stopped (not completed, nor failed)
    if command -v scontrol >/dev/null 2>&1 && [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then
        scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" || exit "$code"
        exit 0
    fi
    exit "$code"
fi
if [ "$code" -eq 3 ]; then  # another process trains this member: nothing left for this task
    code=0
fi
exit "$code"
"""


def _about(job: SlurmJob, left: int, total: int) -> list[str]:
    """The script's first comment: what each array task is."""
    if job.search:
        what = f"{left} array tasks, each a worker of the study"
        return [
            f"# tui-trainer tune {job.sweep}: {what}",
            "# (written by `tui-trainer tune --slurm`). Submit it with `sbatch THIS_FILE`.",
        ]
    return [
        f"# tui-trainer sweep {job.sweep}: {left} of its {total} members left, one array task",
        "# each (written by `tui-trainer sweep --slurm`). Submit it with `sbatch THIS_FILE`.",
    ]


def sbatch_script(job: SlurmJob) -> str:
    """The script's text: directives, a comment on submitting and watching it, the task."""
    left, total = len(job.indices), job.members
    watch = f"{shlex.quote(str(job.python))} -m tui_trainer --runs-dir {_q(job.runs_dir)}"
    head = [
        "#!/bin/bash",
        *_about(job, left, total),
        f"# Watch it from the login node: {watch}",
        f"# Task logs: {job.log_dir}/JOBID_K.out. The runs folder must be shared by every node.",
        *_directives(job),
        "",
        "set -u",
    ]
    if job.presets_dir is not None:
        head.append(f"export {PRESETS_ENV}={_q(job.presets_dir)}")
    return "\n".join(head) + "\n" + TASK.replace("COMMAND", _command(job))


def _q(path: Path) -> str:
    return shlex.quote(str(path))
