"""Browsing what is there: the presets, the runs folder, and one run in detail."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tui_trainer import config as C
from tui_trainer.cli.common import RunsOpt, err, out, print_summary, user_errors
from tui_trainer.cli.tables import Col, print_fitted
from tui_trainer.errors import UserError
from tui_trainer.runs.detached import LOG_NAME
from tui_trainer.runs.display import format_number
from tui_trainer.runs.store import Run, default_runs_dir, find_run, list_runs
from tui_trainer.train.system_metrics import SystemPeaks, format_bytes

STUDY_ORDER = {"Scratch": 0, "Transfer learning": 1, "Augmentation": 2, "Backbones": 3}


# A narrow terminal leaves out the higher `drop` first: the free text, then the schedule.
PRESET_COLUMNS = (
    Col("preset"),
    Col("model", 5),
    Col("weights", 6),
    Col("freeze", 4),
    Col("augment", 3),
    Col("lr"),
    Col("epochs", 7),
    Col("step", 9),
    Col("gamma", 8),
    Col("description", 10, wrap=True),
)


@user_errors
def presets() -> None:
    """List the presets: one per experiment of the report, grouped by study."""
    rows: list[list[str]] = []
    study = None
    for p in sorted(C.list_presets(), key=lambda p: (STUDY_ORDER.get(p.study, 9), p.name)):
        if p.study != study:
            study = p.study
            rows.append([f"[bold]{study}[/]"])
        c = p.config
        rows.append(
            [
                p.name,
                c.model,
                c.weights,
                c.freeze,
                c.augment,
                f"{c.lr:g}",
                str(c.epochs),
                str(c.step_size),
                f"{c.gamma:g}",
                p.description,
            ]
        )
    print_fitted(out, PRESET_COLUMNS, rows)


# In display order; a narrow terminal leaves out the higher `drop` first. The id names the
# preset; id, status and test accuracy are always shown.
RUN_COLUMNS = (
    Col("id"),
    Col("preset", 11),
    Col("model", 9),
    Col("freeze", 8),
    Col("augment", 7),
    Col("lr", 3),
    Col("epochs", 4),
    Col("step", 10),
    Col("gamma", 10),
    Col("status"),
    Col("max_val_acc", 2),
    Col("test_acc"),
    Col("duration", 5),
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
        "status": r.status(summary),
        "max_val_acc": summary.get("max_val_acc"),
        "test_acc": summary.get("test_acc"),
        "duration": summary.get("seconds"),
    }


@user_errors
def runs(
    runs_dir: RunsOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON rows instead of a table.")
    ] = False,
) -> None:
    """List the runs in the runs folder."""
    given, runs_dir = runs_dir is not None, runs_dir or default_runs_dir()
    if not runs_dir.is_dir() and (given or runs_dir.exists()):  # as `report` refuses it
        raise UserError(f"runs folder {runs_dir} does not exist: pass --runs-dir DIR")
    rows = [run_row(r) for r in list_runs(runs_dir)]
    unreadable = [row["id"] for row in rows if row["model"] is None]  # every config names one
    if unreadable:
        shown = ", ".join(unreadable[:3]) + (", ..." if len(unreadable) > 3 else "")
        err.print(
            f"warning: skipped {len(unreadable)} run folder(s) whose config.json cannot be "
            f"read: {shown}",
            markup=False,
            highlight=False,
        )
        rows = [row for row in rows if row["model"] is not None]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    cells = []
    for row in rows:
        dur = row["duration"]
        row = {**row, "duration": f"{dur / 60:.1f} min" if dur else "-"}
        cells.append([format_number(row[c.name], 4 if c.name == "lr" else 3) for c in RUN_COLUMNS])
    print_fitted(out, RUN_COLUMNS, cells, " or --json", plain=True)


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

    from tui_trainer.runs.display import plot_epoch_metric, plot_step_loss

    r = find_run(runs_dir or default_runs_dir(), run_id)
    if misclassified:
        print_misclassified(r)
        return
    meta = r.meta()
    out.print(f"[bold]{r.id}[/]  preset={meta.get('preset')}  status={r.status()}")
    cfg = meta.get("config", {})
    out.print("config: " + "  ".join(f"{k}={v}" for k, v in cfg.items()), highlight=False)
    summary = r.summary()
    print_summary(r.status(summary), summary, summary.get("message", ""))
    console_log = r.path / LOG_NAME  # a detached or --parallel run's output
    if console_log.exists():
        out.print(f"output: {console_log}", markup=False, highlight=False, soft_wrap=True)
    print_system(r, summary)
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
        # the clear theme still ends each line with a colour reset: none where colour is refused
        typer.echo(plotext.uncolorize(plotext.build()))


def print_system(r: Run, summary: dict) -> None:
    """The run's system peaks: the summary's, or system.jsonl's for a run going or crashed."""
    peaks = r.system_peaks(summary)
    if peaks is None:
        return
    source = "" if "system" in summary else " (from system.jsonl: the summary has none yet)"
    out.print(f"system: {peaks.samples} samples{source}", highlight=False)
    for line in system_lines(peaks):
        out.print(f"  {line}", highlight=False)
    samples = [] if peaks.gpu_util_mean is not None else r.system()
    note = samples[-1].note if samples else None
    if note:
        out.print(f"  {note}", markup=False, highlight=False)


def system_lines(peaks: SystemPeaks) -> list[str]:
    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    lines = [
        f"peak_rss: {format_bytes(peaks.peak_rss_bytes)}",
        f"mean_cpu: {percent(peaks.mean_cpu_percent)} (of one core)",
    ]
    if peaks.gpu_util_mean is None and peaks.gpu_mem_peak_bytes is None:
        return [*lines, "gpu: none used by the run"]
    where = {"torch": "torch's reserved", "nvml": "NVML, whole GPU"}.get(peaks.gpu_mem_source)
    memory = format_bytes(peaks.gpu_mem_peak_bytes) + (f" ({where})" if where else "")
    return [
        *lines,
        f"gpu_util: mean {percent(peaks.gpu_util_mean)}, peak {percent(peaks.gpu_util_peak)}",
        f"peak_gpu_mem: {memory}",
    ]


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
