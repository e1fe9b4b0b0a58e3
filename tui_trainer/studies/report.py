"""The report's four tables, rebuilt from the runs folder (`tui-trainer report`).

Each row of the report is described here by the config it was run with (model, weights, freeze,
augment, lr, epochs, step_size, gamma). A cell takes its number from the summary of the latest
completed run matching its row, and says which run that was. The report's own numbers are data
here too, so `--compare-paper` can put them beside ours.

Protocol: the report trained on all 101 classes with 224 px crops of 256 px images, batch 256 and
half of the training images held out for validation. A quick run (`classes=5`, `image_size=64`...)
measures something else, so by default only full-protocol runs fill cells. With `any_protocol`
quick runs count too and a PROTOCOL column names each cell's deviations; a full-protocol run still
wins over a quick one, so a quick check never hides a real result. A row's schedule is part of
what it is (two scratch rows differ only in epochs), so a quick run fills a cell only if it keeps
the row's lr, epochs, step_size and gamma: shrink classes or image_size for a quick check.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.config import RunConfig
from tui_trainer.errors import ConfigError
from tui_trainer.events import RunStatus
from tui_trainer.runs.store import Run, list_runs

PROTOCOL = {"classes": 0, "image_size": 224, "resize": 256, "batch_size": 256, "val_fraction": 0.5}
FULL = "full"
EMPTY = "—"
FORMATS = ("md", "csv", "json")


@dataclass(frozen=True)
class Column:
    name: str
    key: str  # the summary.json key the number comes from
    where: dict[str, Any] = field(default_factory=dict)  # extra match for this column alone


@dataclass(frozen=True)
class RowSpec:
    keys: tuple[str, ...]  # the row's leading cells, as the report prints them
    match: dict[str, Any]
    paper: tuple[str, ...]  # the report's numbers for the result columns, as printed


@dataclass(frozen=True)
class TableSpec:
    key: str
    title: str
    key_columns: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[RowSpec, ...]


# --- the report's tables, as data ------------------------------------------------------------

SCRATCH = {"model": "alexnet", "weights": "none", "freeze": "none", "augment": "none"}
FINETUNE = {**SCRATCH, "weights": "imagenet"}
# Sections 3.2-5 keep the best fine-tune schedule.
BEST_SCHEDULE = {"lr": 0.005, "epochs": 20, "step_size": 10, "gamma": 0.1}
LR_COLUMNS = ("LR", "NUM_EPOCHS", "STEP_SIZE", "GAMMA")


def _lr_row(base: dict[str, Any], schedule: str, *paper: str) -> RowSpec:
    lr, epochs, step, gamma = schedule.split()
    match = {"lr": float(lr), "epochs": int(epochs), "step_size": int(step), "gamma": float(gamma)}
    return RowSpec((lr, epochs, step, gamma), {**base, **match}, paper)


def _row(label: str, paper: tuple[str, ...], **match: Any) -> RowSpec:
    return RowSpec((label,), {**FINETUNE, **BEST_SCHEDULE, **match}, paper)


TABLES = (
    TableSpec(
        "scratch",
        "Table 1: AlexNet trained from scratch",
        LR_COLUMNS,
        (Column("MAX_VAL_ACC", "max_val_acc"), Column("TEST_ACC", "test_acc")),
        (
            _lr_row(SCRATCH, "0.001 30 20 0.1", "0.16", "0.09"),
            _lr_row(SCRATCH, "0.005 20 10 0.1", "0.15", "0.13"),
            _lr_row(SCRATCH, "0.01 30 15 0.1", "0.25", "0.26"),
            _lr_row(SCRATCH, "0.05 30 20 0.1", "0.47", "0.49"),
            _lr_row(SCRATCH, "0.1 30 5 0.5", "0.40", "0.42"),
            _lr_row(SCRATCH, "0.05 40 20 0.1", "0.41", "0.42"),
        ),
    ),
    TableSpec(
        "finetune",
        "Section 3.1: fine-tuning all of ImageNet AlexNet",
        LR_COLUMNS,
        (Column("MAX_VAL_ACC", "max_val_acc"),),
        (
            _lr_row(FINETUNE, "0.001 30 20 0.1", "0.82"),
            _lr_row(FINETUNE, "0.005 20 10 0.1", "0.85"),
            _lr_row(FINETUNE, "0.0005 40 30 0.5", "0.82"),
        ),
    ),
    TableSpec(
        "policies",
        "Table 2: transfer-learning policies",
        ("POLICY",),
        (Column("FINAL_TRAIN_LOSS", "final_train_loss"), Column("TEST_ACCURACY", "test_acc")),
        (
            _row("train the entire model", ("0.044", "0.82"), freeze="none"),
            _row("freeze convolutional layers", ("0.035", "0.84"), freeze="conv"),
            _row("freeze fully connected layers", ("2.628", "0.39"), freeze="fc"),
        ),
    ),
    TableSpec(
        "augmentation",
        "Table 3: data augmentation",
        ("AUG_TYPE",),
        (
            Column("TEST_ACCURACY", "test_acc"),
            Column("ACCURACY_GAP", "accuracy_gap"),
            Column("LOSS_GAP", "loss_gap"),
        ),
        (
            _row("CS-HF", ("0.85", "0.12", "0.66"), augment="cs-hf"),
            _row("H-RP", ("0.83", "0.15", "0.75"), augment="h-rp"),
            _row("B-GS-R", ("0.81", "0.16", "0.77"), augment="b-gs-r"),
        ),
    ),
    TableSpec(
        "backbones",
        "Table 4: other networks (ImageNet weights, no augmentation)",
        ("NET",),
        (
            Column("TEST_ACCURACY", "test_acc", {"freeze": "none"}),
            Column("TEST_ACCURACY_FREEZE", "test_acc", {"freeze": "conv"}),
        ),
        (
            _row("AlexNet", ("0.82", "0.84"), model="alexnet"),
            _row("Resnet18", ("0.87", "0.91"), model="resnet18"),
            _row("Resnet50", ("0.91", "0.93"), model="resnet50"),
        ),
    ),
)

# --- building the tables from runs -------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    value: float | None
    run_id: str | None
    protocol: str | None  # "full", or the run's deviations from the protocol
    paper: str


@dataclass(frozen=True)
class Row:
    keys: tuple[str, ...]
    cells: tuple[Cell, ...]

    def label(self, key_columns: tuple[str, ...]) -> str:
        if len(self.keys) == 1:
            return self.keys[0]
        return " ".join(f"{c}={v}" for c, v in zip(key_columns, self.keys, strict=True))


@dataclass(frozen=True)
class Table:
    spec: TableSpec
    rows: list[Row]


@dataclass(frozen=True)
class Report:
    runs_dir: Path
    any_protocol: bool
    tables: list[Table]


@dataclass(frozen=True)
class _Candidate:
    run: Run
    config: dict[str, Any]
    summary: dict[str, Any]
    protocol: str


def protocol_of(config: dict[str, Any]) -> str:
    """ "full" for the report's protocol, else the deviations, e.g. "classes=5 image_size=64"."""
    off = [f"{k}={config.get(k)}" for k, v in PROTOCOL.items() if config.get(k) != v]
    return " ".join(off) or FULL


def _candidates(runs: list[Run], any_protocol: bool) -> list[_Candidate]:
    found = []
    for run in runs:
        summary = run.summary()
        if run.status(summary) != RunStatus.COMPLETED:
            continue
        try:
            config = RunConfig.from_dict(run.config()).to_dict()
        except ConfigError:
            continue  # a config this version cannot read matches no row
        protocol = protocol_of(config)
        if any_protocol or protocol == FULL:
            found.append(_Candidate(run, config, summary, protocol))
    return found


def _matches(config: dict[str, Any], match: dict[str, Any]) -> bool:
    for key, want in match.items():
        have = config.get(key)
        if isinstance(want, float):
            if not isinstance(have, int | float) or not math.isclose(have, want, rel_tol=1e-9):
                return False
        elif have != want:
            return False
    return True


def _cell(candidates: list[_Candidate], match: dict[str, Any], key: str, paper: str) -> Cell:
    found = [(c.protocol == FULL, i) for i, c in enumerate(candidates) if _matches(c.config, match)]
    if not found:
        return Cell(None, None, None, paper)
    best = candidates[max(found)[1]]  # a full-protocol run first, then the latest
    return Cell(best.summary.get(key), best.run.id, best.protocol, paper)


def build_report(
    runs_dir: Path, any_protocol: bool = False, runs: list[Run] | None = None
) -> Report:
    """The tables from the runs in `runs_dir` (`runs`: that folder's runs, already listed)."""
    runs = list_runs(Path(runs_dir)) if runs is None else runs
    candidates = _candidates(runs, any_protocol)
    tables = []
    for spec in TABLES:
        rows = [
            Row(
                row.keys,
                tuple(
                    _cell(candidates, {**row.match, **col.where}, col.key, paper)
                    for col, paper in zip(spec.columns, row.paper, strict=True)
                ),
            )
            for row in spec.rows
        ]
        tables.append(Table(spec, rows))
    return Report(Path(runs_dir), any_protocol, tables)


# --- rendering ---------------------------------------------------------------------------------


def value_text(value: float | None) -> str:
    return EMPTY if value is None else f"{value:.3f}"


def joined_text(values: list[str | None]) -> str:
    seen = list(dict.fromkeys(v for v in values if v))
    return ", ".join(seen) or EMPTY


def render(report: Report, fmt: str = "md", compare_paper: bool = False) -> str:
    if fmt == "md":
        return render_markdown(report, compare_paper)
    if fmt == "csv":
        return render_csv(report, compare_paper)
    if fmt == "json":
        return json.dumps(report_dict(report, compare_paper), indent=2) + "\n"
    raise ConfigError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")


def render_markdown(report: Report, compare_paper: bool = False) -> str:
    if report.any_protocol:
        scope = "of any protocol (a full-protocol run wins over a quick one)"
    else:
        scope = "on the report's protocol (quick runs left out: --any-protocol includes them)"
    lines = [
        "# Results",
        "",
        f"Each cell: the latest completed run in `{report.runs_dir}` {scope}; {EMPTY} = no run.",
    ]
    for table in report.tables:
        spec = table.spec
        header = list(spec.key_columns)
        for col in spec.columns:
            header += [col.name, f"{col.name} (paper)"] if compare_paper else [col.name]
        header += ["RUN"] + (["PROTOCOL"] if report.any_protocol else [])
        lines += ["", f"## {spec.title}", "", _md_line(header), _md_line(["---"] * len(header))]
        for row in table.rows:
            cells = list(row.keys)
            for cell in row.cells:
                cells += [value_text(cell.value)] + ([cell.paper] if compare_paper else [])
            cells.append(joined_text([c.run_id for c in row.cells]))
            if report.any_protocol:
                cells.append(joined_text([c.protocol for c in row.cells]))
            lines.append(_md_line(cells))
    return "\n".join(lines) + "\n"


def _md_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_csv(report: Report, compare_paper: bool = False) -> str:
    """One line per cell (long format): every table fits under one header."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["table", "row", "column", "value", "run", "protocol"]
        + (["paper"] if compare_paper else [])
    )
    for table in report.tables:
        for row in table.rows:
            for col, cell in zip(table.spec.columns, row.cells, strict=True):
                line = [table.spec.key, row.label(table.spec.key_columns), col.name]
                line += ["" if cell.value is None else repr(cell.value)]
                line += [cell.run_id or "", cell.protocol or ""]
                writer.writerow(line + ([cell.paper] if compare_paper else []))
    return buf.getvalue()


def report_dict(report: Report, compare_paper: bool = False) -> dict[str, Any]:
    tables = []
    for table in report.tables:
        spec = table.spec
        rows = []
        for row in table.rows:
            cells = {}
            for col, cell in zip(spec.columns, row.cells, strict=True):
                cells[col.name] = {"value": cell.value, "run": cell.run_id}
                cells[col.name]["protocol"] = cell.protocol
                if compare_paper:
                    cells[col.name]["paper"] = float(cell.paper)
            keys = dict(zip(spec.key_columns, row.keys, strict=True))
            rows.append({"label": row.label(spec.key_columns), "keys": keys, "cells": cells})
        tables.append({"key": spec.key, "title": spec.title, "rows": rows})
    return {
        "runs_dir": str(report.runs_dir),
        "protocol": "any" if report.any_protocol else FULL,
        "tables": tables,
    }
