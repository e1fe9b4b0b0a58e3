"""`tui-trainer sweep NAME --slurm`: an sbatch script for the members left (the text comes from
studies/slurm.py). Nothing is submitted: the script goes to `--out FILE` (written atomically)
or to stdout, and the user runs `sbatch FILE`. No member left: it says so, exit 0, no script.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated

import typer

from tui_trainer.cli.common import out
from tui_trainer.errors import UserError
from tui_trainer.files import write_text_atomic
from tui_trainer.runs.status import RERUN_STATUSES
from tui_trainer.studies import slurm, sweep_file, sweeps

SlurmOpt = Annotated[
    bool,
    typer.Option(
        "--slurm",
        help="Write an sbatch script: a job array over the members left, one member per "
        "task (`--member K`). Submits nothing: run `sbatch FILE`.",
    ),
]
PartitionOpt = Annotated[str | None, typer.Option("--partition", help="--slurm: the partition.")]
TimeOpt = Annotated[
    str | None, typer.Option("--time", help="--slurm: each task's time limit, HH:MM:SS.")
]
GpusOpt = Annotated[int | None, typer.Option("--gpus-per-task", help="--slurm: GPUs per task.")]
CpusOpt = Annotated[int | None, typer.Option("--cpus-per-task", help="--slurm: CPUs per task.")]
MemOpt = Annotated[
    str | None,
    typer.Option(
        "--mem", help=f"--slurm: memory per task, e.g. 16G (default {slurm.DEFAULT_MEM})."
    ),
]
MaxRunningOpt = Annotated[
    int | None, typer.Option("--max-running", help="--slurm: at most N tasks at once (%N).")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="--slurm: write the script here (else stdout).")
]


@dataclass(frozen=True)
class SlurmOptions:
    slurm: bool = False
    partition: str | None = None
    time: str | None = None
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    max_running: int | None = None
    out: Path | None = None

    def check(self, *, dry_run: bool, member: int | None) -> None:
        """Bad combinations and values, before anything is read or written (UserError)."""
        given = [f.name for f in fields(self)[1:] if getattr(self, f.name) is not None]
        if not self.slurm:
            if given:
                option = "--" + given[0].replace("_", "-")
                raise UserError(f"{option} is an option of --slurm: add --slurm, or drop it")
            return
        if dry_run or member is not None:
            other = "--dry-run" if dry_run else "--member"
            raise UserError(f"--slurm writes a script, {other} runs or shows members: pick one")
        slurm.check_time(self.time)
        slurm.check_partition(self.partition)
        slurm.check_mem(self.mem)
        for option in ("gpus_per_task", "cpus_per_task", "max_running"):
            slurm.check_count("--" + option.replace("_", "-"), getattr(self, option))
        if self.out is not None and not self.out.parent.is_dir():
            raise UserError(f"--out {self.out}: folder {self.out.parent} does not exist")
        if self.out is not None and self.out.is_dir():
            raise UserError(f"--out {self.out} is a folder: give a file name, e.g. sweep.sbatch")


def check_paths(sweep: str, runs_dir: Path, data_dir: Path) -> None:
    python = Path(sys.executable).absolute()
    slurm.check_script_text(sweep, runs_dir.absolute(), data_dir.absolute(), python)


def repeated_options(set_: list[str] | None, seeds: int | None, device: str | None) -> list[str]:
    """--set, --seeds and --device as given, for each task (or child) to repeat."""
    options = [arg for item in set_ or [] for arg in ("--set", item)]
    if seeds is not None:
        options += ["--seeds", str(seeds)]
    if device:
        options += ["--device", device]
    return options


def make_job(  # noqa: PLR0913 - each names one part of the script
    name: str,
    members: int,
    indices: tuple[int, ...],
    opts: SlurmOptions,
    runs_dir: Path,
    data_dir: Path,
    options: list[str],
    search: bool = False,
) -> slurm.SlurmJob:
    """The array job: task K runs `sweep NAME --member K` (or, for a search, a `tune` worker)."""
    presets = os.environ.get(slurm.PRESETS_ENV)
    return slurm.SlurmJob(
        sweep=name,
        members=members,
        indices=indices,
        python=Path(sys.executable).absolute(),
        runs_dir=runs_dir.resolve(),
        data_dir=data_dir.resolve(),
        options=tuple(options),
        partition=opts.partition,
        time=opts.time,
        gpus_per_task=opts.gpus_per_task,
        cpus_per_task=opts.cpus_per_task,
        mem=slurm.check_mem(opts.mem),
        max_running=opts.max_running,
        presets_dir=Path(presets).resolve() if presets else None,
        search=search,
    )


def write_script(
    plan: sweep_file.Sweep,
    states: list[sweeps.MemberState],
    opts: SlurmOptions,
    *,
    runs_dir: Path,
    data_dir: Path,
    options: list[str],
) -> None:
    """The script for the members left, to --out or stdout; none left: say so, exit 0."""
    # the members `pending_members` gives, by their # in the full order
    indices = tuple(i for i, s in enumerate(states, 1) if s.status in RERUN_STATUSES)
    if not indices:
        out.print(f"sweep {plan.name}: nothing left to run, no script written")
        raise typer.Exit(0)
    job = make_job(plan.name, len(plan.members), indices, opts, runs_dir, data_dir, options)
    text = slurm.sbatch_script(job)
    job.log_dir.mkdir(exist_ok=True)  # Slurm does not make the --output folder itself
    if opts.out is None:
        sys.stdout.write(text)
        return
    write_text_atomic(opts.out, text)
    opts.out.chmod(0o755)
    spec = slurm.array_spec(indices, opts.max_running)
    out.print(
        f"wrote {opts.out}: {len(indices)} of {len(plan.members)} members, --array={spec}; "
        f"submit it with `sbatch {opts.out}`",
        markup=False,
        highlight=False,
        soft_wrap=True,  # a path is copied from here: never broken over two lines
    )
