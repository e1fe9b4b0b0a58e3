"""The sweep commands: list the sweeps, and run one headless (studies.sweeps does the work)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tui_trainer import config as C
from tui_trainer.cli.common import DataOpt, DeviceOpt, RunsOpt, out, user_errors
from tui_trainer.cli.listen import follow, stopping
from tui_trainer.data.layout import find_layout, resolve_data_dir
from tui_trainer.events import RunStatus
from tui_trainer.runs.display import format_number
from tui_trainer.runs.store import default_runs_dir, ensure_writable
from tui_trainer.studies import sweeps as studies
from tui_trainer.train.footprint import estimate_footprint

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key in every member, e.g. --set classes=5."),
]


@user_errors
def sweeps() -> None:
    """List the sweeps: studies of several runs, started with `tui-trainer sweep NAME`."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in ("sweep", "base", "members", "description"):
        table.add_column(col, no_wrap=col != "description")
    for s in studies.list_sweeps():
        table.add_row(s.name, s.base, str(len(s.members)), s.description)
    out.console().print(table)


def _print_sweep_states(states) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in ("#", "member", "preset", "status", "run", "test_acc"):
        table.add_column(col, no_wrap=True)
    for i, s in enumerate(states, 1):
        test_acc = s.run.summary().get("test_acc") if s.run else None
        run_id = s.run.id if s.run else "-"
        table.add_row(
            str(i), s.member.name, s.member.preset, s.status, run_id, format_number(test_acc)
        )
    out.console().print(table)


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
) -> None:
    """Run a sweep's members in order headless; a rerun continues where it stopped.

    Members with a completed run of the same config are skipped; failed, interrupted and crashed
    ones run again. With seeds (the file's `seeds`, or --seeds N) each member runs once per seed;
    the report shows them as mean ± std. Exit code: 0 all completed, 1 some failed or diverged,
    130 interrupted."""
    overrides: dict[str, str] = C.parse_set_options(set_ or [])
    if device:
        overrides["device"] = device
    forced = None if seeds is None else studies.first_seeds(seeds)
    plan = studies.load_sweep(name, overrides, seeds=forced)
    runs_dir = runs_dir or default_runs_dir()
    states = studies.member_states(plan, runs_dir)
    data_dir = resolve_data_dir(data)
    if not dry_run:
        find_layout(data_dir)  # a wrong --data fails here, before any output
        ensure_writable(runs_dir)
    todo = studies.pending_members(states)
    out.print(f"sweep {plan.name}: {len(plan.members)} members, {len(todo)} to run")
    if plan.seeds:
        out.print(f"seeds: {', '.join(map(str, plan.seeds))} (each member once per seed)")
    if plan.dropped:
        out.print(f"(run once, same config as another member: {', '.join(plan.dropped)})")
    if dry_run:
        _print_sweep_states(states)
        out.print(_disk_line(todo))
        return
    with stopping(f"continue the sweep with `tui-trainer sweep {plan.name}`") as stop:
        interrupted = _run_members(plan, todo, data_dir, runs_dir, stop)
    states = studies.member_states(plan, runs_dir)
    _print_sweep_states(states)
    raise typer.Exit(studies.sweep_exit_code(states, interrupted))


def _disk_line(todo: list[studies.SweepMember]) -> str:
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


def _run_members(plan, todo, data_dir, runs_dir, stop) -> bool:
    """Train the members in order until one is interrupted; True if the user stopped them."""
    for i, member in enumerate(todo, 1):
        if stop.is_set():
            return True
        out.print(f"[bold]{plan.name} {i}/{len(todo)}: {member.name}[/]", highlight=False)
        _, ended = follow(
            lambda on_event, member=member: studies.run_member(
                plan, member, data_dir=data_dir, runs_dir=runs_dir, on_event=on_event, stop=stop
            )
        )
        if ended.status == RunStatus.INTERRUPTED:
            return True
    return False
