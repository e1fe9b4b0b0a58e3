"""Reading a sweep file: its keys checked, and its entries before they are resolved into
members (included sweeps first, then [[runs]] crossed with [grid]). studies/sweeps.py documents
the format and resolves the entries."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trainer.config import FIELD_TYPES, presets_dir, read_toml
from tui_trainer.errors import ConfigError
from tui_trainer.studies import sweep_bounds as bounds

SWEEP_KEYS = ("description", "study", "base", "include", "runs", "grid", "seeds")
MEMBER_KEYS = ("name", "preset")


def sweep_paths(directory: Path | None = None) -> dict[str, Path]:
    directory = directory or presets_dir()
    paths = sorted(p for p in directory.glob("*.toml") if not p.name.startswith("_"))
    return {p.stem: p for p in paths if "base" in read_toml(p)}


def find_sweep(name: str, directory: Path) -> Path:
    paths = sweep_paths(directory)
    if name in paths:
        return paths[name]
    if (directory / f"{name}.toml").is_file():
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
    return bounds.checked_size(runs, grid, path)


def _checked_seeds(value: Any, path: Path) -> tuple[int, ...]:
    bounds.check_seed_list(value, path)
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
