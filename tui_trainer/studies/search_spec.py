"""A search file: a sweep file whose `[search]` table samples configs instead of listing them.

    description = "..."
    base = "scratch"                 # the preset every trial starts from
    [search]
    trials = 24                      # the study ends at this many finished trials
    objective = "max_val_acc"        # or "min_val_loss": the run's best epoch by that figure
    sampler = "tpe"                  # or "random"; seeded by `seed` (default 42)
    seed = 42
    pruner = "median"                # or "hyperband", "threshold", "none"
    [search.pruner_settings]         # optional: passed to the pruner as keywords
    n_startup_trials = 5             #   median: n_startup_trials, n_warmup_steps, interval_steps
    n_warmup_steps = 2               #   hyperband: min_resource, reduction_factor
                                     #   threshold: lower, upper, n_warmup_steps
    [search.space]                   # one distribution per config key
    lr = { low = 1e-3, high = 0.1, log = true }      # a float key: float (log, step)
    step_size = { low = 5, high = 25, step = 5 }     # an int key: int (step, log)
    gamma = [0.1, 0.5]                               # any key: one of these values

Parsed and checked here without Optuna (studies/search.py builds its sampler and pruner): every
bound and every categorical value is applied to the base config, so a value the config refuses
fails here, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.config import FIELD_TYPES, RunConfig, load_preset, presets_dir, read_toml
from tui_trainer.errors import ConfigError

SEARCH_FILE_KEYS = ("description", "study", "base", "search")
SEARCH_KEYS = ("trials", "objective", "sampler", "seed", "pruner", "pruner_settings", "space")
# objective -> (the Epoch figure, the study's direction)
OBJECTIVES = {"max_val_acc": ("val_acc", "maximize"), "min_val_loss": ("val_loss", "minimize")}
SAMPLERS = ("tpe", "random")
PRUNER_SETTINGS = {
    "median": ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "hyperband": ("min_resource", "max_resource", "reduction_factor"),
    # prunes a trial whose figure so far is outside [lower, upper]: "below 0.2 after 5 epochs"
    "threshold": ("lower", "upper", "n_warmup_steps", "interval_steps"),
    "none": (),
}
DEFAULT_SEED = 42
MAX_TRIALS = 10_000


@dataclass(frozen=True)
class Param:
    """One key's distribution: `choices` for a categorical one, else low/high (step, log)."""

    key: str
    kind: str  # "float" | "int" | "categorical"
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.key}: one of {', '.join(map(str, self.choices))}"
        scale = " log" if self.log else ""
        step = f" step {self.step}" if self.step is not None else ""
        return f"{self.key}: {self.kind}{scale} {self.low} .. {self.high}{step}"


@dataclass(frozen=True)
class SearchSpec:
    name: str
    description: str
    base: str
    path: Path
    trials: int
    space: tuple[Param, ...]
    objective: str = "max_val_acc"
    sampler: str = "tpe"
    seed: int = DEFAULT_SEED
    pruner: str = "median"
    pruner_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def figure(self) -> str:
        """The Epoch event's field the objective follows."""
        return OBJECTIVES[self.objective][0]

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective][1]


def trial_epochs(spec: SearchSpec, config: RunConfig) -> int:
    """The most epochs one trial trains: the top of a searched `epochs` (a range's high, a
    list's largest value), else the config's."""
    searched = [p for p in spec.space if p.key == "epochs"]
    tops = [max(p.choices) if p.kind == "categorical" else p.high for p in searched]
    return int(max(tops)) if tops else config.epochs


def is_search_file(data: dict[str, Any]) -> bool:
    return "base" in data and "search" in data


def search_paths(directory: Path | None = None) -> dict[str, Path]:
    directory = directory or presets_dir()
    paths = sorted(p for p in directory.glob("*.toml") if not p.name.startswith("_"))
    return {p.stem: p for p in paths if is_search_file(read_toml(p))}


def load_search(
    name: str, directory: Path | None = None, trials: int | None = None
) -> tuple[SearchSpec, RunConfig]:
    """The search `name` and its base preset's config, or ConfigError; `trials` (--trials)
    replaces the file's."""
    directory = directory or presets_dir()
    paths = search_paths(directory)
    if name not in paths:
        raise ConfigError(
            f"unknown search {name!r}: choose one of {', '.join(paths) or '(none)'} "
            "(a sweep file with a [search] table)"
        )
    return parse_search(name, read_toml(paths[name]), paths[name], directory, trials)


def parse_search(
    name: str, data: dict[str, Any], path: Path, directory: Path, trials: int | None = None
) -> tuple[SearchSpec, RunConfig]:
    unknown = [k for k in data if k not in SEARCH_FILE_KEYS]
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}: a search file takes "
            f"{', '.join(SEARCH_FILE_KEYS)} (distributions go in [search.space])"
        )
    base = data.get("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f'{path}: base must be a preset name, e.g. base = "scratch"')
    config = load_preset(base, directory).config
    table = data["search"]
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: search must be a table ([search])")
    bad = [k for k in table if k not in SEARCH_KEYS]
    if bad:
        raise ConfigError(
            f"{path}: unknown key {bad[0]!r} in [search]: use {', '.join(SEARCH_KEYS)}"
        )
    spec = SearchSpec(
        name=name,
        description=str(data.get("description", "")),
        base=base,
        path=path,
        trials=_trials(table.get("trials") if trials is None else trials, path),
        space=_space(table.get("space"), config, path),
        objective=_choice(table, "objective", tuple(OBJECTIVES), "max_val_acc", path),
        sampler=_choice(table, "sampler", SAMPLERS, "tpe", path),
        seed=_seed(table.get("seed", DEFAULT_SEED), path),
        pruner=_choice(table, "pruner", tuple(PRUNER_SETTINGS), "median", path),
        pruner_settings=dict(table.get("pruner_settings", {})),
    )
    _check_pruner_settings(spec)
    return spec, config


def _trials(value: Any, path: Path) -> int:
    if type(value) is not int or not 0 < value <= MAX_TRIALS:
        raise ConfigError(
            f"{path}: trials must be a whole number from 1 to {MAX_TRIALS}, got {value!r}"
        )
    return value


def _seed(value: Any, path: Path) -> int:
    if type(value) is not int or value < 0:
        raise ConfigError(f"{path}: [search] seed must be a whole number >= 0, got {value!r}")
    return value


def _choice(table: dict[str, Any], key: str, allowed: tuple[str, ...], default: str, path) -> str:
    value = table.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{path}: [search] {key} = {value!r}: use one of {', '.join(allowed)}")
    return value


def _check_pruner_settings(spec: SearchSpec) -> None:
    allowed = PRUNER_SETTINGS[spec.pruner]
    if spec.pruner == "threshold" and not {"lower", "upper"} & set(spec.pruner_settings):
        raise ConfigError(f"{spec.path}: the threshold pruner needs lower or upper")
    for key, value in spec.pruner_settings.items():
        if key not in allowed:
            takes = ", ".join(allowed) or "no settings"
            raise ConfigError(
                f"{spec.path}: pruner_settings {key!r}: the {spec.pruner} pruner takes {takes}"
            )
        if key in ("lower", "upper"):
            ok = type(value) in (int, float)
        else:
            ok = (type(value) is int and value >= 0) or (key == "max_resource" and value == "auto")
        if not ok:
            kind = "a number" if key in ("lower", "upper") else "a whole number"
            raise ConfigError(f"{spec.path}: pruner_settings {key} must be {kind}")


def _space(value: Any, config: RunConfig, path: Path) -> tuple[Param, ...]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            f"{path}: [search.space] is empty: give at least one distribution, "
            "e.g. lr = { low = 0.001, high = 0.1, log = true }"
        )
    return tuple(_param(key, dist, config, path) for key, dist in value.items())


def _param(key: str, dist: Any, config: RunConfig, path: Path) -> Param:
    where = f"{path}: [search.space] {key}"
    if key not in FIELD_TYPES:
        raise ConfigError(f"{path}: unknown config key {key!r} in [search.space]")
    if key == "seed":
        raise ConfigError(f"{where}: a search over seeds is a seeds sweep (--confirm --seeds N)")
    if isinstance(dist, list):
        return _categorical(key, dist, config, where)
    if not isinstance(dist, dict):
        raise ConfigError(f"{where}: give a list of values or {{ low = .., high = .. }}")
    return _ranged(key, dist, config, where)


def _categorical(key: str, values: list, config: RunConfig, where: str) -> Param:
    kind = FIELD_TYPES[key]
    if not values:
        raise ConfigError(f"{where}: the list of values is empty")
    for value in values:
        numeric_ok = kind is float and type(value) is int
        if type(value) is not kind and not numeric_ok:
            raise ConfigError(
                f"{where}: {value!r} has the wrong type ({type(value).__name__}): "
                f"{key} takes a {kind.__name__}"
            )
        _applies(config, key, value, where)
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: a value is listed twice")
    return Param(key, "categorical", choices=tuple(values))


def _ranged(key: str, dist: dict[str, Any], config: RunConfig, where: str) -> Param:
    kind = FIELD_TYPES[key]
    if kind not in (int, float):
        raise ConfigError(f"{where}: {key} is not a number: give a list of values")
    unknown = [k for k in dist if k not in ("low", "high", "step", "log")]
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}: use low, high, step, log")
    low, high, step, log = (
        dist.get("low"),
        dist.get("high"),
        dist.get("step"),
        dist.get("log", False),
    )
    _check_numbers(kind, {"low": low, "high": high, "step": step}, where)
    if type(log) is not bool:
        raise ConfigError(f"{where}: log must be true or false")
    if low >= high:
        raise ConfigError(f"{where}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0 (got {low})")
    if step is not None and (step <= 0 or log):
        raise ConfigError(f"{where}: step must be > 0 and cannot go with log")
    for value in (low, high):
        _applies(config, key, value, where)
    name = "int" if kind is int else "float"
    return Param(key, name, low=low, high=high, step=step, log=log)


def _check_numbers(kind: type, values: dict[str, Any], where: str) -> None:
    allowed = (int,) if kind is int else (int, float)
    for label, value in values.items():
        if value is None and label == "step":
            continue
        if type(value) not in allowed:
            raise ConfigError(
                f"{where}: {label} must be a{'n integer' if kind is int else ' number'}"
            )


def _applies(config: RunConfig, key: str, value: Any, where: str) -> None:
    """The base config takes `value` for `key` (lr > 0, momentum below 1, ...)."""
    try:
        config.with_overrides({key: value})
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
