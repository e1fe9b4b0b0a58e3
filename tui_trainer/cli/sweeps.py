"""The sweep commands: list the sweeps, and run one headless (studies.sweeps does the work).

Several `sweep NAME` processes on one runs folder share the members out through claims
(studies/members.py); `--member K` trains member K alone, for a scheduler's array task, and
`--parallel N [--gpus ...]` runs N such `--member` children at once (studies/parallel.py, the
view in cli/sweep_progress.py).
Exit codes: 0 every member completed, 1 a member failed or diverged, 2 bad input, 3 none failed
but some are still training in another process (with `--member`: that member), 130 interrupted.
"""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from tui_trainer import config as C
from tui_trainer.cli import slurm_command, sweep_progress
from tui_trainer.cli.common import DataOpt, DeviceOpt, RunsOpt, err, out, user_errors
from tui_trainer.cli.listen import exit_code, follow, stopping
from tui_trainer.cli.tables import Col, print_fitted
from tui_trainer.data.layout import find_layout, resolve_data_dir
from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.display import format_number
from tui_trainer.runs.status import exit_code_for
from tui_trainer.runs.store import default_runs_dir, ensure_writable
from tui_trainer.studies import members
from tui_trainer.studies.parallel import ChildOptions, check_logs, stop_with_parent
from tui_trainer.studies.slots import parse_gpus, plan_slots, sets_threads
from tui_trainer.studies.sweep_file import Sweep, SweepMember, first_seeds, list_sweeps, load_sweep
from tui_trainer.studies.sweeps import member_states, pending_members, sweep_exit_code
from tui_trainer.train.footprint import estimate_footprint
from tui_trainer.train.host import cpu_threads

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key in every member, e.g. --set classes=5."),
]
MemberOpt = Annotated[
    int | None,
    typer.Option(
        "--member",
        help="Train only member K (the # of --dry-run, fixed as members complete), e.g. for a "
        "job array; exit 3 if another process is training it.",
    ),
]
ParallelOpt = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        help="Train up to N members at once, each in a child process (one per GPU with "
        "--gpus; on the CPU the cores are split between them). Logs: <runs>/.sweep-logs/.",
    ),
]
ParallelGpusOpt = Annotated[
    str | None,
    typer.Option(
        "--gpus",
        help="GPUs for --parallel, e.g. 0,1: a member per GPU at a time (N defaults to "
        "their number; more than that takes turns on them).",
    ),
]
SinceOpt = Annotated[
    float | None,
    typer.Option(
        "--since",
        hidden=True,  # what a --parallel parent gives its children, not a user's option
        help="The invocation's start (seconds since the epoch): a member that failed in "
        "another process after it is not retried. Default: now.",
    ),
]


SWEEP_COLUMNS = (Col("sweep"), Col("base", 2), Col("members"), Col("description", 1, wrap=True))
# A narrow terminal leaves out the preset, then the accuracy; run ids stay whole.
MEMBER_COLUMNS = (
    Col("#"),
    Col("member"),
    Col("preset", 2),
    Col("status"),
    Col("run"),
    Col("test_acc", 1),
)


@user_errors
def sweeps() -> None:
    """List the sweeps: studies of several runs, started with `tui-trainer sweep NAME`."""
    rows = [[s.name, s.base, str(len(s.members)), s.description] for s in list_sweeps()]
    print_fitted(out, SWEEP_COLUMNS, rows)


def _print_sweep_states(states, only: int | None = None) -> None:
    """The members' table; `only`: member K's row alone (its # kept)."""
    rows = []
    for i, s in enumerate(states, 1):
        if only is not None and i != only:
            continue
        test_acc = s.run.summary().get("test_acc") if s.run else None
        run_id = s.run.id if s.run else "-"
        status = s.status
        if s.holder is not None and s.holder.live and s.status == RunStatus.RUNNING:
            status = f"running ({s.holder.describe()})"
        rows.append(
            [str(i), s.member.name, s.member.preset, status, run_id, format_number(test_acc)]
        )
    print_fitted(out, MEMBER_COLUMNS, rows)


def _check_member(plan: Sweep, member: int | None) -> None:
    if member is not None and not 1 <= member <= len(plan.members):
        raise UserError(
            f"--member {member}: sweep {plan.name} has members 1 to {len(plan.members)} "
            f"(see `tui-trainer sweep {plan.name} --dry-run`)"
        )


@user_errors
def sweep(
    name: Annotated[str, typer.Argument(help="Sweep name (see `tui-trainer sweeps`).")],
    set_: SetOpt = None,
    data: DataOpt = None,
    runs_dir: RunsOpt = None,
    device: DeviceOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the members and their state; run nothing.")
    ] = False,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            help="Repeat every member over the first N seeds of 42, 0, 1, 2... "
            "(wins over the file's `seeds`).",
        ),
    ] = None,
    member: MemberOpt = None,
    slurm: slurm_command.SlurmOpt = False,
    partition: slurm_command.PartitionOpt = None,
    time_limit: slurm_command.TimeOpt = None,
    gpus_per_task: slurm_command.GpusOpt = None,
    cpus_per_task: slurm_command.CpusOpt = None,
    mem: slurm_command.MemOpt = None,
    max_running: slurm_command.MaxRunningOpt = None,
    out_file: slurm_command.OutOpt = None,
    parallel: ParallelOpt = None,
    gpus: ParallelGpusOpt = None,
    since_option: SinceOpt = None,
) -> None:
    """Run a sweep's members in order headless; a rerun continues where it stopped.

    Members with a completed run of the same config are skipped, and so are members another
    `sweep` process is training (on this host or another sharing the runs folder); interrupted
    and crashed ones resume from their last epoch, failed ones run again. With seeds (the file's
    `seeds`, or --seeds N) each member runs once per seed; the report shows them as mean ± std.
    Exit code: 0 every member completed, 1 some failed or diverged, 3 none failed but some
    still train in another process (--member: that one), 130 interrupted. --slurm writes an
    sbatch script (a job array of --member tasks) instead; --parallel N trains N members at
    once, each in a child process."""
    # a member failed in another process after this is not retried here (nor by the children
    # of a --parallel sweep: they get the parent's start as --since)
    since = time.time() if since_option is None else since_option
    slurm_opts = slurm_command.SlurmOptions(
        slurm, partition, time_limit, gpus_per_task, cpus_per_task, mem, max_running, out_file
    )
    slurm_opts.check(dry_run=dry_run, member=member)
    slots = _parallel_slots(parallel, gpus, member=member, slurm=slurm, set_=set_, device=device)
    overrides: dict[str, str] = C.parse_set_options(set_ or [])
    if device:
        overrides["device"] = device
    forced = None if seeds is None else first_seeds(seeds)
    plan = load_sweep(name, overrides, seeds=forced)
    _check_member(plan, member)
    runs_dir = runs_dir or default_runs_dir()
    states = member_states(plan, runs_dir)
    data_dir = resolve_data_dir(data)
    if slurm:  # before the runs folder is made: a path no script can hold is refused first
        slurm_command.check_paths(plan.name, runs_dir, data_dir)
    if not dry_run:
        find_layout(data_dir)  # a wrong --data fails here, before any output
        ensure_writable(runs_dir)
    if slurm:
        options = slurm_command.repeated_options(set_, seeds, device)
        slurm_command.write_script(
            plan, states, slurm_opts, runs_dir=runs_dir, data_dir=data_dir, options=options
        )
        return
    todo = pending_members(states)
    if slots is not None and not dry_run:  # a planted log: one line, before any other output
        check_logs(runs_dir, plan.name, todo)
    _print_plan(plan, todo)
    if dry_run:
        _print_sweep_states(states, member)
        chosen = todo if member is None else [m for m in todo if m == plan.members[member - 1]]
        out.print(_disk_line(chosen))
        return
    if member is not None:
        _run_one(plan, member, data_dir, runs_dir, since)  # exits with the member's code
    if slots is not None:
        options = ChildOptions(data_dir, runs_dir, tuple(set_ or ()), seeds, device, since=since)
        raise typer.Exit(sweep_progress.run_parallel(plan, todo, slots, options))
    hint = f"continue the sweep with `tui-trainer sweep {plan.name}`"
    with stopping(hint) as stop:
        interrupted = _run_members(plan, todo, data_dir, runs_dir, stop, since)
    states = member_states(plan, runs_dir)
    _print_sweep_states(states)
    if interrupted:
        err.print(hint, markup=False, highlight=False)
    raise typer.Exit(sweep_exit_code(states, interrupted))


def _parallel_slots(parallel, gpus, *, member, slurm, set_, device):
    """--parallel/--gpus as the children's slots (None without them), or UserError."""
    if parallel is None and gpus is None:
        return None
    given = "--parallel" if parallel is not None else "--gpus"
    if member is not None:
        raise UserError(f"{given} with --member: a --member task trains one member; drop one")
    if slurm:
        raise UserError(f"{given} with --slurm: the array runs tasks side by side; drop {given}")
    import torch

    return plan_slots(
        parallel,
        None if gpus is None else parse_gpus(gpus),
        device_count=torch.cuda.device_count(),
        cores=cpu_threads(0),
        device=device,
        user_threads=sets_threads(set_),
        visible=os.environ.get("CUDA_VISIBLE_DEVICES"),
    )


def _print_plan(plan: Sweep, todo: list[SweepMember]) -> None:
    out.print(f"sweep {plan.name}: {len(plan.members)} members, {len(todo)} to run")
    if plan.seeds:
        out.print(f"seeds: {', '.join(map(str, plan.seeds))} (each member once per seed)")
    if plan.dropped:
        out.print(f"(same config, run once: {', '.join(plan.dropped)})")


def _disk_line(todo: list[SweepMember]) -> str:
    """What the members still to run leave on disk, and the most one of them holds while it
    trains (from the model's size: train/footprint.py)."""
    if not todo:
        return "disk: nothing left to run"
    prints = [estimate_footprint(m.config) for m in todo]
    final = sum(p.final_bytes for p in prints)
    peak = max((p.peak_bytes for p in prints), default=0)
    return (
        f"disk: about {_gigabytes(final)} once the {len(todo)} to run complete; a run's folder "
        f"holds up to {_gigabytes(peak)} while it trains"
    )


def _gigabytes(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def _run_members(plan, todo, data_dir, runs_dir, stop, since) -> bool:
    """Train the members in order until one is interrupted; True if the user stopped them.
    Each is claimed first: one another process holds, or finished meanwhile, is skipped."""
    for i, member in enumerate(todo, 1):
        if stop.is_set():
            return True
        label = f"{plan.name} {i}/{len(todo)}: {member.name}"
        taken = members.claim_member(plan, member, runs_dir, since=since)
        if isinstance(taken, members.Skipped):
            out.print(f"{label}: {taken.describe()}", markup=False, highlight=False)
            continue
        with taken:
            ended = _train_claimed(taken, label, data_dir, runs_dir, stop)
        if ended.status == RunStatus.INTERRUPTED:
            return True
    return False


def _train_claimed(taken: members.Claimed, label: str, data_dir, runs_dir, stop):
    resuming = f" (resuming run {taken.resume.id})" if taken.resume is not None else ""
    out.print(f"[bold]{label}[/]{resuming}", highlight=False)
    _, ended = follow(
        lambda on_event: taken.train(
            data_dir=data_dir, runs_dir=runs_dir, on_event=on_event, stop=stop
        ),
        runs_dir,
    )
    return ended


def _run_one(plan: Sweep, index: int, data_dir, runs_dir, since: float) -> None:
    """`--member K`: train that member unless it is done or another process has it; exits."""
    member = plan.members[index - 1]
    label = f"{plan.name} member {index}/{len(plan.members)}: {member.name}"
    hint = f"continue it with `tui-trainer sweep {plan.name} --member {index}`"
    with stopping(hint) as stop, stop_with_parent(stop) as parent_alive:
        if not parent_alive:  # a --parallel sweep's child whose parent has gone
            out.print(f"{label}: the parallel sweep that started it has ended", markup=False)
            raise typer.Exit(130)
        taken = members.claim_member(plan, member, runs_dir, since=since)
        if isinstance(taken, members.Skipped):
            out.print(f"{label}: {taken.describe()}", markup=False, highlight=False)
            raise typer.Exit(_skipped_exit_code(taken.reason))
        with taken:
            ended = _train_claimed(taken, label, data_dir, runs_dir, stop)
    raise typer.Exit(exit_code(ended.status))


def _skipped_exit_code(reason: members.SkipReason) -> int:
    """As a whole sweep's, from the table: a member a live process holds counts as running."""
    status = RunStatus.RUNNING if reason is members.SkipReason.HELD else reason
    return exit_code_for({status}, interrupted=False)
