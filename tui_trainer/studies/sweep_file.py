"""The sweep file: a study of several runs as one action, read and resolved into members.

A sweep file sits beside the presets in `presets/` and is told apart from a preset by its `base`
key (`config.list_presets` skips such files). It names the preset its members start from and the
members, as a list, a grid, or both:

    description = "..."
    base = "scratch"              # the preset every member starts from
    include = ["other-sweep"]     # optional: that sweep's members come first
    seeds = [42, 0, 1]            # optional: every member below, once per seed
    [[runs]]                      # one member per table: overrides on the base preset
    name = "lr0.001"              #   optional label; run ids end with it
    preset = "freeze-conv"        #   optional: start from this preset instead of the base
    lr = 0.001
    [grid]                        # every combination of these values, crossed with each
    lr = [0.01, 0.05]             # [[runs]] entry (or with the base alone when there is none)

Members whose resolved configs are identical are run once (the first one is kept). Overrides
given for the whole sweep (`sweep NAME --set k=v`, the console's override field) end the name of
each member whose config they change: `scratch-lr0.05-e30-s20-g0.1-epochs=2`.

Seeds: `seeds` repeats each member over those seeds, as repeats of one experiment (reported as
mean ± std); `sweep NAME --seeds N` does the same with the first N of 42, 0, 1, 2, ... and wins
over every file's `seeds`. The run at the member's own seed keeps its name, the others end with
`-seed<N>` (`lr0.05`, `lr0.05-seed0`). A member that sets `seed` itself is refused with seeds: a
`[grid]` over seed makes separate members (separate cells), not repeats.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trainer.config import (
    FIELD_TYPES,
    RunConfig,
    load_preset,
    parse_value,
    presets_dir,
    read_toml,
)
from tui_trainer.errors import ConfigError
from tui_trainer.runs.groups import UNCOMPARED_KEYS, comparable
from tui_trainer.studies import sweep_bounds

SWEEP_KEYS = ("description", "study", "base", "include", "runs", "grid", "seeds")
MEMBER_KEYS = ("name", "preset")
SEED_KEY = "seed"
# `--seeds N` takes the first N: 42 first, the default seed, so runs made with the defaults
# count as the first seed of a group.
FIRST_SEED = 42


@dataclass(frozen=True)
class SweepMember:
    name: str
    preset: str
    overrides: dict[str, Any]  # on top of the preset: the sweep's entry, its grid values, --set
    config: RunConfig
    cell: str = ""  # the member's name without its seed suffix: one per group of seeds


@dataclass(frozen=True)
class Sweep:
    name: str
    description: str
    base: str
    members: list[SweepMember]
    dropped: list[str]  # members left out because an earlier one has the same config
    path: Path
    seeds: tuple[int, ...] = ()  # the seeds members repeat over (none: one run per member)


def list_sweeps(directory: Path | None = None) -> list[Sweep]:
    return [load_sweep(name, directory=directory) for name in sweep_paths(directory)]


def first_seeds(n: int) -> tuple[int, ...]:
    """The first `n` seeds of the fixed list 42, 0, 1, 2, ... (`--seeds N`)."""
    sweep_bounds.check_seed_count(n)
    return (FIRST_SEED, *(s for s in range(n) if s != FIRST_SEED))[:n]


def load_sweep(
    name: str,
    overrides: dict[str, Any] | None = None,
    directory: Path | None = None,
    seeds: tuple[int, ...] | None = None,
    source: str = "--set",
) -> Sweep:
    """Resolve a sweep's members (`overrides`, e.g. from --set, apply to all of them; `seeds`,
    from --seeds, replace every file's `seeds`). Every member is validated here, so bad input
    fails before anything runs; a bad override is blamed on `source`, where it was typed. A
    member's name ends with the overrides that change its config (`-epochs=2`)."""
    directory = directory or presets_dir()
    path = find_sweep(name, directory)
    data = read_toml(path)
    overrides = overrides or {}
    _check_overrides(overrides, source)
    members: dict[str, SweepMember] = {}  # by name
    dropped: list[str] = []
    kept: dict[str | None, str] = {}  # comparable config -> the member that runs it
    used: dict[int, None] = {}
    entries = read_entries(path, directory, (name,))
    sweep_bounds.check_seeded_size(sum(max(1, len(_seeds_for(e, seeds))) for e in entries), path)
    for entry in entries:
        entry, config = _applied(entry, overrides, directory, source)
        used.update(dict.fromkeys(_seeds_for(entry, seeds)))
        for member in _seed_members(entry, config, seeds):
            key = comparable(member.config.to_dict())
            if key in kept:
                dropped.append(f"{member.name} = {kept[key]}")
                continue
            if member.name in members:
                raise ConfigError(
                    f"{entry.path}: two members are named {member.name!r}: give them distinct names"
                )
            kept[key] = member.name
            members[member.name] = member
    description = str(data.get("description", ""))
    return Sweep(name, description, data["base"], [*members.values()], dropped, path, tuple(used))


def _check_overrides(overrides: dict[str, Any], source: str) -> None:
    """An override wrong on its own (an unknown key, a value of the wrong type) is the
    override's fault, whatever member it would meet first."""
    for key, value in overrides.items():
        try:
            parse_value(key, value)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def _applied(
    entry: Entry, overrides: dict[str, Any], directory: Path, source: str
) -> tuple[Entry, RunConfig]:
    """The entry with `overrides` on top, named after those that change its config (those of
    where it runs aside, as for matching runs), and its config."""
    try:
        own = load_preset(entry.preset, directory).config.with_overrides(entry.overrides)
    except ConfigError as exc:
        raise ConfigError(f"{entry.path}: member {entry.name}: {exc}") from None
    try:
        config = own.with_overrides(overrides)
    except ConfigError as exc:
        raise ConfigError(f"{source}, on member {entry.name}: {exc}") from None
    changed = [
        f"{k}={v}"
        for k, v in overrides.items()
        if k not in UNCOMPARED_KEYS and getattr(config, k) != getattr(own, k)
    ]
    name = "-".join([entry.name, *changed])
    merged = {**entry.overrides, **overrides}
    return dataclasses.replace(entry, name=name, overrides=merged), config


def _seeds_for(entry: Entry, forced: tuple[int, ...] | None) -> tuple[int, ...]:
    return entry.seeds if forced is None else forced


def _seed_members(
    entry: Entry, config: RunConfig, forced: tuple[int, ...] | None
) -> list[SweepMember]:
    """The entry as one member, or one per seed: the member's own seed keeps its name."""
    merged = entry.overrides
    seeds = _seeds_for(entry, forced)
    if seeds and SEED_KEY in merged:
        source = "--seeds" if forced is not None else "seeds"
        raise ConfigError(
            f"{entry.path}: member {entry.name} sets seed itself ([[runs]], [grid] or --set) "
            f"and {source} repeats it over seeds: drop one of the two"
        )
    members = []
    for seed in seeds or (config.seed,):
        if seed == config.seed:
            members.append(SweepMember(entry.name, entry.preset, merged, config, entry.name))
            continue
        try:
            seeded_config = config.with_overrides({SEED_KEY: seed})
        except ConfigError as exc:
            raise ConfigError(f"{entry.path}: member {entry.name}: {exc}") from None
        name = f"{entry.name}-seed{seed}"
        seeded = {**merged, SEED_KEY: seed}
        members.append(SweepMember(name, entry.preset, seeded, seeded_config, entry.name))
    return members


def sweep_paths(directory: Path | None = None) -> dict[str, Path]:
    directory = directory or presets_dir()
    paths = sorted(p for p in directory.glob("*.toml") if not p.name.startswith("_"))
    # a file with a [search] table is a search (studies/search_spec.py), run by `tune`
    return {p.stem: p for p in paths if "base" in (d := read_toml(p)) and "search" not in d}


def find_sweep(name: str, directory: Path) -> Path:
    paths = sweep_paths(directory)
    if name in paths:
        return paths[name]
    if (directory / f"{name}.toml").is_file():
        if "search" in read_toml(directory / f"{name}.toml"):
            raise ConfigError(f"{name} is a search: run it with `tui-trainer tune {name}`")
        raise ConfigError(f"{name} is a preset, not a sweep: run it with `tui-trainer run {name}`")
    raise ConfigError(
        f"unknown sweep {name!r}: choose one of {', '.join(paths) or '(none)'} "
        "(see `tui-trainer sweeps`)"
    )


@dataclass(frozen=True)
class Entry:
    name: str
    preset: str
    overrides: dict[str, Any]
    path: Path
    seeds: tuple[int, ...]  # the file's `seeds` (empty: one run)


def read_entries(path: Path, directory: Path, seen: tuple[str, ...]) -> list[Entry]:
    """The file's members before resolution: included sweeps first, then runs x grid."""
    data = read_toml(path)
    base = _checked_base(data, path)
    entries: list[Entry] = []
    for name in _string_list(data.get("include", []), path, "include"):
        if name in seen:
            raise ConfigError(f"{path}: include {name!r} loops back to itself: remove it")
        entries += read_entries(find_sweep(name, directory), directory, (*seen, name))
    runs, grid = _checked_members(data, path)
    seeds = _checked_seeds(data.get("seeds", []), path)
    for entry in runs:
        preset = str(entry.get("preset", base))
        fixed = {k: v for k, v in entry.items() if k not in MEMBER_KEYS}
        label = str(entry.get("name") or _label(preset, fixed))
        for combo in itertools.product(*grid.values()):
            varied = dict(zip(grid, combo, strict=True))
            name = "-".join([label, *(f"{k}={v}" for k, v in varied.items())])
            entries.append(Entry(name, preset, {**fixed, **varied}, path, seeds))
    return entries


def _checked_base(data: dict[str, Any], path: Path) -> str:
    """A sweep file's keys are known and its base names a preset, or ConfigError."""
    unknown = [k for k in data if k not in SWEEP_KEYS]
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}: a sweep takes {', '.join(SWEEP_KEYS)} "
            "(config keys go inside [[runs]] or [grid])"
        )
    base = data["base"]
    if not isinstance(base, str) or not base:
        raise ConfigError(f'{path}: base must be a preset name, e.g. base = "scratch"')
    return base


def _checked_members(
    data: dict[str, Any], path: Path
) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
    """A sweep file's ([[runs]], [grid]), or ConfigError naming what is wrong in them."""
    runs = data.get("runs", [{}])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise ConfigError(f"{path}: runs must be [[runs]] tables of config keys")
    grid = data.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{path}: [grid] values must be non-empty lists, e.g. lr = [0.01, 0.05]")
    for key in grid:
        if key == "seeds":
            raise ConfigError(
                f"{path}: seeds goes at the top of the file, before [[runs]] and [grid]"
            )
        if key not in FIELD_TYPES:
            raise ConfigError(f"{path}: unknown config key {key!r} in [grid]")
    for key in (k for r in runs for k in r):
        if key not in FIELD_TYPES and key not in MEMBER_KEYS:
            raise ConfigError(
                f"{path}: unknown key {key!r} in [[runs]]: use config keys, name or preset"
            )
    return sweep_bounds.checked_size(runs, grid, path)


def _checked_seeds(value: Any, path: Path) -> tuple[int, ...]:
    sweep_bounds.check_seed_list(value, path)
    ok = isinstance(value, list) and all(type(v) is int and v >= 0 for v in value)
    if not ok or len(set(value)) != len(value):
        raise ConfigError(f"{path}: seeds must be distinct whole numbers, e.g. seeds = [42, 0, 1]")
    return tuple(value)


def _string_list(value: Any, path: Path, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{path}: {key} must be a list of names, e.g. {key} = ["a", "b"]')
    return value


def _label(preset: str, overrides: dict[str, Any]) -> str:
    return "-".join([preset, *(f"{k}={v}" for k, v in overrides.items())])
