"""The study commands: sweeps, the report's tables, per-class results and the preview.

Thin Typer commands over studies.py, report.py, perclass.py and preview.py, registered on the
main `app` (cli.py imports this module at its end).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tui_trainer import config as C
from tui_trainer.cli.app import (
    DataOpt,
    DeviceOpt,
    RunsOpt,
    _print_summary,
    _stop_on_signals,
    app,
    out,
    user_errors,
)
from tui_trainer.data.layout import find_layout, resolve_data_dir
from tui_trainer.errors import UserError
from tui_trainer.runs.display import format_number
from tui_trainer.runs.store import default_runs_dir, ensure_writable


def print_class_results(r, n: int = 10) -> None:
    from tui_trainer.runs.results import confused_pairs, load_test_results, worst_classes

    results = load_test_results(r.path)
    if results is None:
        return
    out.print(f"worst classes (of {len(results['classes'])}, test accuracy):")
    for c in worst_classes(results, n):
        out.print(f"  {c.accuracy:.3f}  {c.correct}/{c.total}  {c.name}", highlight=False)
    pairs = confused_pairs(results, n)
    out.print("most confused (true -> predicted: test images):" if pairs else "no confusions")
    for true, pred, count in pairs:
        out.print(f"  {true} -> {pred}: {count}", markup=False, highlight=False)


def print_misclassified(r) -> None:
    from tui_trainer.runs.results import RESULTS_FILE, load_test_results, misclassified_images

    results = load_test_results(r.path)
    if results is None:
        raise UserError(
            f"run {r.id} has no {RESULTS_FILE}: only completed runs store per-class test results"
        )
    images = misclassified_images(results)
    for path, true, pred in images:
        typer.echo(f"{path}\t{true} -> {pred}")
    total = sum(c["total"] for c in results["per_class"])
    typer.echo(f"{len(images)} of {total} test images misclassified")


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key in every member, e.g. --set classes=5."),
]


@app.command()
@user_errors
def sweeps() -> None:
    """List the sweeps: studies of several runs, started with `tui-trainer sweep NAME`."""
    from tui_trainer.studies.sweeps import list_sweeps

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in ("sweep", "base", "members", "description"):
        table.add_column(col, no_wrap=col != "description")
    for s in list_sweeps():
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


@app.command()
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
) -> None:
    """Run a sweep's members in order headless; a rerun continues where it stopped.

    Members with a completed run of the same config are skipped; failed, interrupted and crashed
    ones run again. Exit code: 0 all completed, 1 some failed or diverged, 130 interrupted."""
    from tui_trainer.cli.progress import progress_listener
    from tui_trainer.studies import sweeps as studies

    overrides: dict[str, str] = C.parse_set_options(set_ or [])
    if device:
        overrides["device"] = device
    plan = studies.load_sweep(name, overrides)
    runs_dir = runs_dir or default_runs_dir()
    states = studies.member_states(plan, runs_dir)
    data_dir = resolve_data_dir(data)
    if not dry_run:
        find_layout(data_dir)  # a wrong --data fails here, before any output
        ensure_writable(runs_dir)
    todo = [s.member for s in states if s.status in studies.RERUN_STATUSES]
    out.print(f"sweep {plan.name}: {len(plan.members)} members, {len(todo)} to run")
    if plan.dropped:
        out.print(f"(run once, same config as another member: {', '.join(plan.dropped)})")
    if dry_run:
        _print_sweep_states(states)
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    interrupted = False
    for i, member in enumerate(todo, 1):
        if stop.is_set():
            interrupted = True
            break
        out.print(f"[bold]{plan.name} {i}/{len(todo)}: {member.name}[/]", highlight=False)
        with progress_listener(out, sys.stdout.isatty()) as listener:
            run_, ended = studies.run_member(
                plan, member, data_dir=data_dir, runs_dir=runs_dir, on_event=listener, stop=stop
            )
        _print_summary(ended.status, ended.summary, ended.message)
        if run_ is not None:  # None: stopped before training, the message says so
            out.print(f"run folder: {run_.path}", markup=False, highlight=False)
        if ended.status == "interrupted":
            interrupted = True
            break
    states = studies.member_states(plan, runs_dir)
    _print_sweep_states(states)
    raise typer.Exit(studies.sweep_exit_code(states, interrupted))


@app.command()
@user_errors
def report(
    fmt: Annotated[str, typer.Option("--format", help="md | csv | json")] = "md",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to FILE instead of stdout.")
    ] = None,
    runs_dir: RunsOpt = None,
    compare_paper: Annotated[
        bool, typer.Option("--compare-paper", help="Put the report's own numbers beside ours.")
    ] = False,
    any_protocol: Annotated[
        bool,
        typer.Option(
            "--any-protocol",
            help="Count quick runs too (classes, image_size... off the report's protocol).",
        ),
    ] = False,
) -> None:
    """The report's tables from the completed runs, each cell naming its run."""
    from tui_trainer.studies.report import FORMATS, build_report, render

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not known: choose one of {', '.join(FORMATS)}")
    runs_dir = runs_dir or default_runs_dir()
    if not runs_dir.is_dir():
        raise UserError(f"runs folder {runs_dir} does not exist: pass --runs-dir DIR")
    text = render(build_report(runs_dir, any_protocol), fmt, compare_paper)
    if out_file is None:
        typer.echo(text, nl=False)
        return
    try:
        out_file.write_text(text)
    except OSError as exc:
        raise UserError(f"cannot write {out_file} ({exc.strerror}): pick another --out") from None
    typer.echo(f"report written to {out_file}")


@app.command()
@user_errors
def preview(
    image: Annotated[Path, typer.Argument(help="An image file (JPEG, PNG...).")],
    out_file: Annotated[Path, typer.Option("--out", help="The grid to write (.png or .jpg).")],
    seed: Annotated[int | None, typer.Option(help="Repeat the same random draws.")] = None,
) -> None:
    """Write the image beside its CS-HF, H-RP and B-GS-R augmentations (the report's Figure 5)."""
    from tui_trainer.data.preview import write_preview

    typer.echo(f"preview written to {write_preview(image, out_file, seed)}")
