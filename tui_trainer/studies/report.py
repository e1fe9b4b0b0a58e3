"""The report's four tables, rebuilt from the runs folder (`tui-trainer report`).

Each row of the report is described here by the config it was run with (model, weights, freeze,
augment, lr, epochs, step_size, gamma). The report's own numbers are data here too, so
`--compare-paper` can put them beside ours and say where ours lie against them.

Seeds: the runs matching a cell fall into groups of repeats, runs that differ only by seed
(`runs.groups.seed_group_key`: the config without seed, plus the precision the run resolved to,
since `auto` may pick differently on different machines). A cell shows one group: full protocol
first, then the group with most completed seeds, then the one with the latest completed run; it
counts the other groups that match (`other_groups`). Within the group each seed counts once, by
its latest completed run (else its latest run, failed or running, which counts towards m in
"n=2 of 3" but adds no figure). The cell's value is the mean over the completed seeds; a group of
one run shows as that run, as before seeds.

Protocol: the report trained on all 101 classes with 224 px crops of 256 px images, batch 256 and
half of the training images held out for validation. A quick run (`classes=5`, `image_size=64`...)
measures something else, so by default only full-protocol runs fill cells. With `any_protocol`
quick runs count too and a PROTOCOL column names each cell's deviations; a full-protocol run still
wins over a quick one, so a quick check never hides a real result. A row's schedule is part of
what it is (two scratch rows differ only in epochs), so a quick run fills a cell only if it keeps
the row's lr, epochs, step_size and gamma: shrink classes or image_size for a quick check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.config import RunConfig
from tui_trainer.errors import ConfigError
from tui_trainer.events import RunStatus
from tui_trainer.runs.groups import Spread, latest_per_seed, seed_group_key, spread, spread_text
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
class SeedRun:
    """One seed of a cell's group: its latest completed run, else its latest run."""

    run_id: str
    seed: int
    status: str
    value: float | None  # the cell's figure from this run (None unless completed)


@dataclass(frozen=True)
class Cell:
    value: float | None  # the mean over the completed seeds (one run: its figure)
    run_id: str | None  # the group's latest completed run
    protocol: str | None  # "full", or the runs' deviations from the protocol
    paper: str
    spread: Spread = Spread(())
    runs: tuple[SeedRun, ...] = ()  # one per seed of the group, whatever its status
    precision: str | None = None  # the precision the group's runs resolved to
    other_groups: int = 0  # other groups of runs that match this cell (not shown)

    @property
    def expected(self) -> int:
        """m in "n=2 of 3": the seeds the group's runs were started with."""
        return len(self.runs)

    @property
    def completed(self) -> tuple[SeedRun, ...]:
        return tuple(r for r in self.runs if r.status == RunStatus.COMPLETED)

    def text(self) -> str:
        """ "0.441 ± 0.052 (n=3)", "0.500" for one run, "—" for none."""
        return spread_text(self.spread, of=self.expected)

    def against_paper(self) -> str | None:
        """Where our values lie against the report's number: below, within or above."""
        return self.spread.against(float(self.paper)) if self.spread.values else None


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
    index: int  # the run's place in the folder (ids sort by start time)
    run: Run
    config: dict[str, Any]
    summary: dict[str, Any]
    status: str
    protocol: str
    precision: str | None
    group: str


def protocol_of(config: dict[str, Any]) -> str:
    """ "full" for the report's protocol, else the deviations, e.g. "classes=5 image_size=64"."""
    off = [f"{k}={config.get(k)}" for k, v in PROTOCOL.items() if config.get(k) != v]
    return " ".join(off) or FULL


def _candidates(runs: list[Run], any_protocol: bool) -> list[_Candidate]:
    """Every run (whatever its status) that could count for a cell: a failed or running seed
    still counts towards how many seeds a group expected."""
    found = []
    for index, run in enumerate(runs):
        meta = run.meta()
        try:
            config = RunConfig.from_dict(meta.get("config", {})).to_dict()
        except ConfigError:
            continue  # a config this version cannot read matches no row
        protocol = protocol_of(config)
        if not (any_protocol or protocol == FULL):
            continue
        summary = run.summary()
        precision = meta.get("precision")
        group = seed_group_key(config, precision) or ""
        status = str(run.status(summary))
        found.append(_Candidate(index, run, config, summary, status, protocol, precision, group))
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


def _done(c: _Candidate) -> bool:
    return c.status == RunStatus.COMPLETED


def _rank(group: list[_Candidate]) -> tuple[bool, int, int]:
    """Full protocol first, then most completed seeds, then the latest completed run."""
    done = [c for c in group if _done(c)]
    return group[0].protocol == FULL, len({c.config["seed"] for c in done}), done[-1].index


def _per_seed(group: list[_Candidate], key: str) -> tuple[SeedRun, ...]:
    chosen = latest_per_seed(group, lambda c: c.config["seed"], _done)
    return tuple(
        SeedRun(c.run.id, seed, c.status, c.summary.get(key) if _done(c) else None)
        for seed, c in chosen.items()
    )


def _cell(candidates: list[_Candidate], match: dict[str, Any], key: str, paper: str) -> Cell:
    groups: dict[str, list[_Candidate]] = {}
    for c in candidates:
        if _matches(c.config, match):
            groups.setdefault(c.group, []).append(c)
    shown = [g for g in groups.values() if any(_done(c) for c in g)]
    if not shown:
        return Cell(None, None, None, paper)
    best = max(shown, key=_rank)
    runs = _per_seed(best, key)
    values = spread(r.value for r in runs if r.status == RunStatus.COMPLETED)
    latest = [c for c in best if _done(c)][-1]
    return Cell(
        values.mean,
        latest.run.id,
        latest.protocol,
        paper,
        values,
        runs,
        latest.precision,
        len(shown) - 1,
    )


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


def value_text(value: float | None) -> str:
    return EMPTY if value is None else f"{value:.3f}"


def joined_text(values: list[str | None]) -> str:
    seen = list(dict.fromkeys(v for v in values if v))
    return ", ".join(seen) or EMPTY


def cell_runs(cell: Cell) -> list[str]:
    """The runs a cell's number comes from (its completed seeds)."""
    return [r.run_id for r in cell.completed]
