"""The headless front end: thin Typer commands that build a config and call one function.

Exit codes: 0 completed, 1 failed or diverged, 2 bad input (nothing written), 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tui_trainer import config as C
from tui_trainer.data.layout import resolve_data_dir
from tui_trainer.errors import UserError
from tui_trainer.runs.display import format_number
from tui_trainer.runs.store import SUMMARY_FIELDS, default_runs_dir, find_run, list_runs
from tui_trainer.train import topology as distributed

app = typer.Typer(
    help="Train and compare image classifiers on Caltech-101 from the terminal.",
    add_completion=False,
)
data_app = typer.Typer(help="Inspect or fetch the dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

err = Console(stderr=True)


class _Out:
    """stdout console made per call: full-width rows when piped, the terminal's width otherwise."""

    def console(self) -> Console:
        return Console(width=None if sys.stdout.isatty() else 200)

    def __getattr__(self, name):
        return getattr(self.console(), name)


out = _Out()
STUDY_ORDER = {"Scratch": 0, "Transfer learning": 1, "Augmentation": 2, "Backbones": 3}
EXIT_CODES = {"completed": 0, "failed": 1, "diverged": 1, "interrupted": 130}

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Dataset folder (else $TUI_TRAINER_DATA, else ./data/caltech101)."),
]
RunsOpt = Annotated[
    Path | None,
    typer.Option("--runs-dir", help="Runs folder (else $TUI_TRAINER_RUNS, else ./runs)."),
]
DeviceOpt = Annotated[str | None, typer.Option(help="auto | cpu | cuda | mps")]


def user_errors(fn):
    """Bad input: one line on stderr naming the problem and the fix, exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@user_errors
def presets() -> None:
    """List the presets: one per experiment of the report, grouped by study."""
    console = out.console()
    wide = console.width >= 110
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    cols = ["preset", "model", "weights", "freeze", "augment", "lr", "epochs", "step", "gamma"]
    for col in cols:
        table.add_column(col, no_wrap=True)
    if wide:
        table.add_column("description", ratio=1)
    study = None
    for p in sorted(C.list_presets(), key=lambda p: (STUDY_ORDER.get(p.study, 9), p.name)):
        if p.study != study:
            study = p.study
            table.add_row(f"[bold]{study}[/]")
        c = p.config
        cells = [
            p.name,
            c.model,
            c.weights,
            c.freeze,
            c.augment,
            f"{c.lr:g}",
            str(c.epochs),
            str(c.step_size),
            f"{c.gamma:g}",
        ]
        table.add_row(*cells, *([p.description] if wide else []))
    console.print(table)


@app.command()
@user_errors
def run(
    preset: Annotated[
        str | None, typer.Argument(help="Preset name (see `tui-trainer presets`).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set lr=0.01 (repeatable)."),
    ] = None,
    data: DataOpt = None,
    runs_dir: RunsOpt = None,
    device: DeviceOpt = None,
    name: Annotated[
        str | None, typer.Option(help="Label for the run id (default: preset).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID",
            help="Continue an interrupted, crashed or failed run from its last finished epoch.",
        ),
    ] = None,
) -> None:
    """Train one preset headless (or --resume a stopped run) and leave a run folder behind."""
    from tui_trainer.cli.progress import progress_listener
    from tui_trainer.runs.launch import resume_run, start_run

    if resume is not None:
        if preset or set_ or name:
            raise UserError(
                "--resume continues a run with its own config: drop PRESET, --set and --name"
            )
        launch = functools.partial(resume_run, resume, data_dir=data, device=device)
    elif preset is None:
        raise UserError(
            "missing PRESET: name one (see `tui-trainer presets`) or pass --resume RUN_ID"
        )
    else:
        overrides: dict[str, str] = C.parse_set_options(set_ or [])
        if device:
            overrides["device"] = device
        loaded, cfg = C.build_config(preset, overrides)
        launch = functools.partial(
            start_run,
            cfg,
            preset=loaded.name,
            overrides=overrides,
            data_dir=resolve_data_dir(data),
            name=name,
        )
    stop = threading.Event()
    restore_signals = _stop_on_signals(stop)
    try:
        # Under torchrun rank 0 alone shows progress and the summary; the others stay silent.
        with progress_listener(out, sys.stdout.isatty() and distributed.is_main()) as listener:
            run_, ended = launch(
                runs_dir=runs_dir or default_runs_dir(), on_event=listener, stop=stop
            )
    except KeyboardInterrupt:  # the second Ctrl-C: no clean stop, the folder shows as crashed
        err.print("aborted: continue the run with `tui-trainer run --resume RUN_ID`")
        raise typer.Exit(130) from None
    finally:
        restore_signals()
    if distributed.is_main():
        _print_summary(ended.status, ended.summary, ended.message)
        if run_ is not None:  # None: stopped before training, the message says so
            out.print(f"run folder: {run_.path}", markup=False, highlight=False)
    elif ended.status == "failed":  # rank 0 may be the one that died: say why this rank ends
        err.print(f"rank {distributed.rank()}: {ended.message}", markup=False, highlight=False)
    raise typer.Exit(EXIT_CODES.get(ended.status, 1))


def _stop_on_signals(stop: threading.Event):
    """First Ctrl-C / SIGTERM: finish cleanly (status interrupted). A second Ctrl-C: hard stop.
    Returns a function that puts the previous handlers back."""

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if distributed.is_main():
            err.print("stopping after the current step or images decoding (Ctrl-C again to abort)")

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]


def _print_summary(status: str, summary: dict, message: str = "") -> None:
    colour = {"completed": "green", "interrupted": "yellow"}.get(status, "red")
    out.print(f"status: [{colour}]{status}[/]" + (f" ({escape(message)})" if message else ""))
    for key in SUMMARY_FIELDS:
        if key in summary:
            out.print(f"  {key}: {format_number(summary[key], 4)}", highlight=False)


NARROW_RUN_COLUMNS = ("id", "lr", "epochs", "status", "max_val_acc", "test_acc", "duration")
RUN_COLUMNS = (
    "id",
    "preset",
    "model",
    "freeze",
    "augment",
    "lr",
    "epochs",
    "step",
    "gamma",
    "status",
    "max_val_acc",
    "test_acc",
    "duration",
)


def run_row(r) -> dict:
    meta, summary = r.meta(), r.summary()
    cfg = meta.get("config", {})
    return {
        "id": r.id,
        "preset": meta.get("preset"),
        "model": cfg.get("model"),
        "freeze": cfg.get("freeze"),
        "augment": cfg.get("augment"),
        "lr": cfg.get("lr"),
        "epochs": cfg.get("epochs"),
        "step": cfg.get("step_size"),
        "gamma": cfg.get("gamma"),
        "status": r.status(),
        "max_val_acc": summary.get("max_val_acc"),
        "test_acc": summary.get("test_acc"),
        "duration": summary.get("seconds"),
    }


@app.command()
@user_errors
def runs(
    runs_dir: RunsOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON rows instead of a table.")
    ] = False,
) -> None:
    """List the runs in the runs folder."""
    rows = [run_row(r) for r in list_runs(runs_dir or default_runs_dir())]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    console = out.console()
    # A narrow terminal gets the columns that tell runs apart; the id already names the preset.
    cols = RUN_COLUMNS if console.width >= 120 else NARROW_RUN_COLUMNS
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in cols:
        table.add_column(col, no_wrap=True)
    for row in rows:
        dur = row["duration"]
        row = {**row, "duration": f"{dur / 60:.1f} min" if dur else "-"}
        table.add_row(*(format_number(row[c], 4 if c == "lr" else 3) for c in cols))
    console.print(table)


@app.command()
@user_errors
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique part of it).")],
    runs_dir: RunsOpt = None,
    misclassified: Annotated[
        bool, typer.Option("--misclassified", help="List the misclassified test images.")
    ] = False,
) -> None:
    """Show one run: its config, summary, worst classes and curves."""
    import plotext

    from tui_trainer.cli.study_commands import print_class_results, print_misclassified
    from tui_trainer.runs.display import plot_epoch_metric, plot_step_loss

    r = find_run(runs_dir or default_runs_dir(), run_id)
    if misclassified:
        print_misclassified(r)
        return
    meta = r.meta()
    out.print(f"[bold]{r.id}[/]  preset={meta.get('preset')}  status={r.status()}")
    cfg = meta.get("config", {})
    out.print("config: " + "  ".join(f"{k}={v}" for k, v in cfg.items()), highlight=False)
    _print_summary(r.status(), r.summary(), r.summary().get("message", ""))
    print_class_results(r)
    width = min(out.width, 100)
    for draw in (
        lambda: plot_step_loss(plotext, r.steps()),
        lambda: plot_epoch_metric(plotext, r.epochs(), "acc", "Accuracy per epoch"),
    ):
        plotext.clf()
        plotext.plotsize(width, 15)
        plotext.theme("clear")
        draw()
        typer.echo(plotext.build())


@app.callback(invoke_without_command=True)
def console(
    ctx: typer.Context, data: DataOpt = None, runs_dir: RunsOpt = None, device: DeviceOpt = None
) -> None:
    """With no command: open the console (same as `tui-trainer tui`)."""
    if ctx.invoked_subcommand is None:
        tui(data, runs_dir, device)


@app.command()
@user_errors
def tui(data: DataOpt = None, runs_dir: RunsOpt = None, device: DeviceOpt = None) -> None:
    """Open the console: launch presets, watch runs live, browse and compare runs."""
    from tui_trainer.tui.app import make_app

    make_app(data_dir=data, runs_dir=runs_dir, device=device).run()


@data_app.command("check")
@user_errors
def data_check(data: DataOpt = None) -> None:
    """Classes, images per split, image modes and unreadable files."""
    from tui_trainer.data.check import check_dataset

    report = check_dataset(resolve_data_dir(data))
    for line in report.lines():
        typer.echo(line)
    if report.unreadable:
        raise typer.Exit(1)


@data_app.command("download")
@user_errors
def data_download(data: DataOpt = None) -> None:
    """Fetch Caltech-101 with torchvision's downloader into the data folder."""
    from tui_trainer.data.check import download

    typer.echo(f"Caltech-101 is in {download(resolve_data_dir(data))}")


@app.command()
@user_errors
def bench(
    preset: Annotated[str, typer.Argument(help="Preset to time (see `tui-trainer presets`).")] = (
        "scratch"
    ),
    classes: Annotated[int | None, typer.Option(help="First N classes (default: all).")] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Crop size; resize follows at 256/224 of it.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Timed engine epochs.")] = 1,
    warmup: Annotated[
        int | None, typer.Option(help="Engine epochs before the timed ones (default 1 on GPU).")
    ] = None,
    ref_epochs: Annotated[int, typer.Option(help="Reference-loop epochs (0 skips it).")] = 1,
    workers: Annotated[int, typer.Option(help="Reference loop's DataLoader workers.")] = 4,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: preset's).")] = None,
    compute_steps: Annotated[
        int | None, typer.Option(help="Timed synthetic batches (default 3 on CPU, 20 on GPU).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set precision=bf16."),
    ] = None,
    data: DataOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Time the engine against pure compute and a notebook-style loop on this machine."""
    from tui_trainer.bench.runner import BenchOptions, run_bench

    overrides: dict[str, str | int] = dict(C.parse_set_options(set_ or []))
    for key, value in (("classes", classes), ("batch_size", batch_size), ("device", device)):
        if value is not None:
            overrides[key] = value
    if image_size is not None:
        overrides["image_size"] = image_size
        overrides.setdefault("resize", round(image_size * 256 / 224))
    options = BenchOptions(
        preset=preset,
        overrides=overrides,
        data_dir=data,
        epochs=epochs,
        warmup=warmup,
        reference_epochs=ref_epochs,
        workers=workers,
        compute_steps=compute_steps,
    )
    run_bench(options, lambda line: out.print(line, markup=False, highlight=False))


def main() -> None:
    app()


# The study commands (sweeps, sweep, report, preview) register themselves on `app`.
from tui_trainer.cli import study_commands as cli_studies  # noqa: E402, F401
