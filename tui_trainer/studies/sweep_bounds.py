"""How big a sweep may get. Far beyond any study (the report's is 18 members): a larger sweep
is a typo in a [grid] or in --seeds, and resolving it would take minutes and gigabytes before
anything is printed, so it is refused in one line before the members are built."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tui_trainer.errors import ConfigError

MAX_MEMBERS = 2_000
MAX_SEEDS = 1_000


def check_seed_count(n: int) -> None:
    """`--seeds N` within (0, MAX_SEEDS]."""
    if n < 1:
        raise ConfigError(f"--seeds {n}: give at least 1, e.g. --seeds 3 (seeds 42, 0, 1)")
    if n > MAX_SEEDS:
        raise ConfigError(f"--seeds {n}: give at most {MAX_SEEDS}, e.g. --seeds 3")


def check_seed_list(value: Any, path: Path) -> None:
    """A file's `seeds` list of at most MAX_SEEDS."""
    if isinstance(value, list) and len(value) > MAX_SEEDS:
        raise ConfigError(f"{path}: {len(value)} seeds: at most {MAX_SEEDS}, e.g. seeds = [42, 0]")


def checked_size(
    runs: list[Any], grid: dict[str, list[Any]], path: Path
) -> tuple[list[Any], dict[str, list[Any]]]:
    """(runs, grid) once the members they make ([[runs]] x [grid]) are counted, before the
    product is built; ConfigError past MAX_MEMBERS."""
    count = len(runs) * math.prod(len(v) for v in grid.values())
    if count > MAX_MEMBERS:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in grid.items()) or "none"
        raise ConfigError(
            f"{path}: {count} members ({len(runs)} [[runs]], [grid] {sizes}): at most "
            f"{MAX_MEMBERS}; split the sweep or shorten the [grid] lists"
        )
    return runs, grid


def check_seeded_size(count: int, path: Path) -> None:
    """The members once each is repeated over its seeds."""
    if count > MAX_MEMBERS:
        raise ConfigError(
            f"{path}: {count} members once repeated over seeds: at most {MAX_MEMBERS}; "
            "give fewer seeds or split the sweep"
        )
