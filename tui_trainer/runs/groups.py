"""Which runs measured the same thing: the keys that match a sweep member to its runs and that
group repeats of one experiment over seeds, and the spread of a group's figures.

One place for both, so the sweep, the report, the Runs view and Compare agree on what "the same
run" and "the same run but for its seed" mean.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tui_trainer.config import RunConfig, load_preset
from tui_trainer.errors import ConfigError
from tui_trainer.runs.store import Run

# Config keys that say where or how a run ran, not what it measured: ignored when matching runs.
UNCOMPARED_KEYS = ("device", "threads", "keep_last", "eval_batch_size")
SEED_KEY = "seed"
T = TypeVar("T")


def comparable(config: dict[str, Any]) -> str | None:
    """A run config as a key: defaults filled in, uncompared keys left out. None if invalid."""
    full = _full(config)
    if full is None:
        return None
    return json.dumps({k: v for k, v in full.items() if k not in UNCOMPARED_KEYS}, sort_keys=True)


def seed_group_key(config: dict[str, Any], precision: str | None) -> str | None:
    """The key shared by runs that differ only by seed: the comparable config without `seed`,
    plus the precision the run resolved to (`auto` may pick bf16 on one machine and fp32 on
    another, and those are not repeats of one experiment). None if the config is invalid."""
    full = _full(config)
    if full is None:
        return None
    kept = {k: v for k, v in full.items() if k not in UNCOMPARED_KEYS and k != SEED_KEY}
    return json.dumps({"config": kept, "precision": precision}, sort_keys=True)


def _full(config: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return RunConfig.from_dict(config).to_dict()
    except ConfigError:
        return None


@dataclass(frozen=True)
class Spread:
    """The figures of one cell over its seeds. `std` is the sample standard deviation (n-1),
    None for a single value."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n >= 2 else None

    @property
    def low(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def high(self) -> float | None:
        return max(self.values) if self.values else None

    def against(self, reference: float) -> str:
        """Where these values lie against `reference` (e.g. the paper's number): "below" when
        all of them are under it, "above" when all are over it, else "within" (the reference
        lies inside [min, max]). Needs at least one value."""
        if not self.values:
            raise ValueError("no values to compare with")
        if self.high < reference and not math.isclose(reference, self.high):
            return "below"
        if self.low > reference and not math.isclose(reference, self.low):
            return "above"
        return "within"


def spread(values: Iterable[float | None]) -> Spread:
    """The finite values among `values` (a missing figure is left out, not counted as zero)."""
    return Spread(tuple(float(v) for v in values if v is not None and math.isfinite(v)))


def spread_text(s: Spread, digits: int = 3, of: int | None = None) -> str:
    """ "0.441 ± 0.052 (n=3)"; a single value as itself; "n=2 of 3" when `of` runs were expected."""
    if not s.values:
        return "—"
    count = f"n={s.n}" + (f" of {of}" if of is not None and of != s.n else "")
    if s.n == 1:
        text = f"{s.mean:.{digits}f}"
        return text if of is None or of == 1 else f"{text} ({count})"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f} ({count})"


def seed_of(config: dict[str, Any]) -> int:
    """A run config's seed (the default one when the file leaves it out)."""
    return int(config.get(SEED_KEY, RunConfig.seed))


def seeds_of(configs: Sequence[dict[str, Any]]) -> list[int]:
    """The seeds of a group's runs, in order, without repeats."""
    return list(dict.fromkeys(seed_of(c) for c in configs))


def latest_per_seed(items: Iterable[T], seed: Callable[[T], int], done: Callable[[T], bool]):
    """One item per seed, in the order given (folder order): a later run replaces an earlier
    one of its seed, unless it would replace a completed run by an unfinished one. The report's
    cells and the grouped Runs table count seeds by this one rule."""
    chosen: dict[int, T] = {}
    for item in items:
        key = seed(item)
        if key not in chosen or done(item) or not done(chosen[key]):
            chosen[key] = item
    return chosen


# --- groups of runs and their curves --------------------------------------------------------

# Fewer runs than this at an epoch is no spread: the band stops there.
MIN_BAND_RUNS = 2


@dataclass(frozen=True)
class SeedGroup:
    """Runs that differ only by seed (oldest first), as one experiment.

    `label` names it: the preset and the keys where its config differs from the preset's
    (seed and placement left out). `precision` is the one its runs resolved to (None for
    folders written before config.json recorded it)."""

    key: str
    runs: tuple[Run, ...]
    seeds: tuple[int, ...]
    run_seeds: tuple[int, ...]  # each run's seed, in the order of `runs`
    label: str
    precision: str | None


def group_by_seed(runs: Iterable[Run]) -> list[SeedGroup]:
    """The runs as seed groups, in the order of each group's first run. A run whose config is
    unreadable or invalid is a group of its own (keyed by its id): nothing is known to match it."""
    members: dict[str, list[tuple[Run, dict[str, Any]]]] = {}
    for run in runs:
        meta = run.meta()
        key = seed_group_key(meta.get("config", {}), meta.get("precision"))
        members.setdefault(key or f"run:{run.id}", []).append((run, meta))
    return [_seed_group(key, entries) for key, entries in members.items()]


def _seed_group(key: str, entries: list[tuple[Run, dict[str, Any]]]) -> SeedGroup:
    first = entries[0][1]
    config, preset = first.get("config", {}), first.get("preset")
    changed = " ".join(f"{k}={_text(v)}" for k, v in preset_differences(config, preset).items())
    return SeedGroup(
        key=key,
        runs=tuple(run for run, _ in entries),
        seeds=tuple(seeds_of([meta.get("config", {}) for _, meta in entries])),
        run_seeds=tuple(seed_of(meta.get("config", {})) for _, meta in entries),
        label=" ".join(part for part in (preset or "run", changed) if part),
        precision=first.get("precision"),
    )


def preset_differences(config: dict[str, Any], preset: str | None) -> dict[str, Any]:
    """The keys where `config` differs from its preset's config (the defaults when the preset
    is unknown here), leaving out the seed and where the run ran."""
    full = _full(config) or dict(config)
    try:
        base = load_preset(preset).config.to_dict() if preset else RunConfig().to_dict()
    except ConfigError:
        base = RunConfig().to_dict()
    skipped = {*UNCOMPARED_KEYS, SEED_KEY}
    return {k: v for k, v in full.items() if k not in skipped and base.get(k) != v}


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class BandPoint:
    """One epoch of a group's curve: the mean, min and max of a metric over the `n` runs that
    reached that epoch."""

    epoch: int
    n: int
    mean: float
    low: float
    high: float


def epoch_band(curves: Sequence[Sequence[dict[str, Any]]], metric: str) -> tuple[BandPoint, ...]:
    """The band of one epoch metric (e.g. "val_acc") over a group's runs (each run's epoch rows).

    Each epoch averages the runs that reached it, so a run still training or stopped early
    counts for the epochs it has and the others go on without it (`n` says how many there
    are); the band stops at the first epoch fewer than MIN_BAND_RUNS runs reached. A missing
    or non-finite value (a diverged loss) counts as a run that did not reach that epoch; a
    resumed run's repeated epoch counts once, its last row."""
    per_run = [_by_epoch(rows, metric) for rows in curves]
    epochs = sorted({epoch for values in per_run for epoch in values})
    points = []
    for epoch in epochs:
        values = [values[epoch] for values in per_run if epoch in values]
        if len(values) < MIN_BAND_RUNS:
            break
        points.append(
            BandPoint(epoch, len(values), statistics.fmean(values), min(values), max(values))
        )
    return tuple(points)


def _by_epoch(rows: Sequence[dict[str, Any]], metric: str) -> dict[int, float]:
    values = {}
    for row in rows:
        value, epoch = row.get(metric), row.get("epoch")
        if isinstance(epoch, int) and isinstance(value, int | float) and math.isfinite(value):
            values[epoch] = float(value)
    return values


def band_counts_text(points: Sequence[BandPoint]) -> str:
    """How many runs each stretch of the band averages: "n=3 to epoch 2, n=2 to epoch 4";
    "" when every epoch has the same n (the legend's n already says it)."""
    stretches: list[tuple[int, int]] = []  # (n, last epoch)
    for point in points:
        if stretches and stretches[-1][0] == point.n:
            stretches[-1] = (point.n, point.epoch)
        else:
            stretches.append((point.n, point.epoch))
    if len(stretches) < 2:
        return ""
    return ", ".join(f"n={n} to epoch {last}" for n, last in stretches)
