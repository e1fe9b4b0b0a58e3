"""Which runs measured the same thing: the keys that match a sweep member to its runs and that
group repeats of one experiment over seeds, and the spread of a group's figures.

One place for both, so the sweep, the report, the Runs view and Compare agree on what "the same
run" and "the same run but for its seed" mean.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tui_trainer.config import RunConfig
from tui_trainer.errors import ConfigError

# Config keys that say where or how a run ran, not what it measured: ignored when matching runs.
UNCOMPARED_KEYS = ("device", "threads", "keep_last")
SEED_KEY = "seed"


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


def seeds_of(configs: Sequence[dict[str, Any]]) -> list[int]:
    """The seeds of a group's runs, in order, without repeats."""
    return list(dict.fromkeys(int(c.get(SEED_KEY, 0)) for c in configs))
