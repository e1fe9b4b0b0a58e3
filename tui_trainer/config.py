"""One run's configuration: the frozen `RunConfig`, the presets over it, and `--set` parsing.

Every default lives in the one commented block of `RunConfig`. Presets (TOML files in `presets/`)
and `--set key=value` overrides (CLI and TUI form alike) go through `RunConfig.with_overrides`,
which converts strings, checks types and ranges, and raises `ConfigError` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tui_trainer.errors import ConfigError

MODELS = ("alexnet", "resnet18", "resnet50")
FREEZE_POLICIES = ("none", "conv", "fc")
AUGMENTATIONS = ("none", "cs-hf", "h-rp", "b-gs-r")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LAST_BATCHES = ("keep", "drop")
# Keys a preset file may carry besides config keys: they describe the preset, not the run.
PRESET_META_KEYS = ("description", "study")


@dataclass(frozen=True)
class RunConfig:
    # --- model -------------------------------------------------------------------------------
    model: str = "alexnet"  # alexnet | resnet18 | resnet50
    weights: str = "none"  # none (random init) | imagenet (torchvision's) | path to state dict
    freeze: str = "none"  # none | conv (train the classifier only) | fc (train conv layers only)
    # --- data --------------------------------------------------------------------------------
    augment: str = "none"  # none | cs-hf | h-rp | b-gs-r: the report's pipelines, train split only
    aug_p: float = 0.5  # each training image goes through the pipeline with this probability
    image_size: int = 224  # center crop fed to the network
    resize: int = 256  # shorter side is resized to this before the crop
    classes: int = 0  # 0 = all 101; N = the first N classes by name (quick runs)
    val_fraction: float = 0.5  # the report splits train 1:1 into train and validation
    # --- optimisation (the report's protocol: SGD + StepLR, batch 256) -------------------------
    batch_size: int = 256
    # keep: train on each epoch's last partial batch too | drop: skip it, as the course notebook's
    # DataLoader(drop_last=True) did (a split smaller than one batch keeps it: never zero steps)
    last_batch: str = "keep"
    # images per forward pass when evaluating (and computing frozen features): 0 = batch_size.
    # No gradients are kept, so a larger one is faster on a CPU and changes no figure beyond
    # float rounding; where it does not fit in GPU memory, lower it.
    eval_batch_size: int = 0
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-5
    epochs: int = 30
    step_size: int = 20  # StepLR: multiply the LR by gamma every step_size epochs
    gamma: float = 0.1
    seed: int = 42  # split, init, data order and augmentation all follow it
    # --- hardware ----------------------------------------------------------------------------
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | mps
    precision: str = "auto"  # fp32 | bf16 | fp16 | auto: bf16 if timed 1.2x faster (cached)
    threads: int = 0  # CPU threads for torch; 0 = every core
    # --- safety ------------------------------------------------------------------------------
    diverge_factor: float = 10.0  # a step loss above factor x the first loss counts as diverging...
    diverge_patience: int = 20  # ...and this many such steps in a row stop the run as diverged
    # --- run folder --------------------------------------------------------------------------
    keep_last: bool = False  # keep last.pt (weights + momentum) once the run completes

    def __post_init__(self) -> None:
        _validate(self)

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A new validated config; values may be strings (from `--set` or a form) or typed."""
        changes = {key: parse_value(key, value) for key, value in overrides.items()}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        return cls().with_overrides({k: v for k, v in data.items() if k in known})


FIELD_TYPES: dict[str, type] = {f.name: type(f.default) for f in fields(RunConfig)}


def parse_value(key: str, value: Any) -> Any:
    """Convert one override to the key's type, or raise ConfigError naming the key and the fix."""
    if key not in FIELD_TYPES:
        raise ConfigError(f"unknown config key {key!r}: use one of {', '.join(FIELD_TYPES)}")
    kind = FIELD_TYPES[key]
    if kind is bool:
        return _parse_bool(key, value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if kind is int:
                return int(text)
            if kind is float:
                return float(text)
        except ValueError:
            raise ConfigError(
                f"{key}={value!r} is not a{'n integer' if kind is int else ' number'}: "
                f"give e.g. {key}={getattr(DEFAULTS, key)}"
            ) from None
        return text
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(
            f"{key}={value!r} has the wrong type ({type(value).__name__}): "
            f"it takes a {kind.__name__}, e.g. {key}={getattr(DEFAULTS, key)!r}"
        )
    return value


BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word not in BOOL_WORDS:
        raise ConfigError(f"{key}={value!r} is not true or false: give e.g. {key}=true")
    return BOOL_WORDS[word]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _one_of(config: RunConfig, key: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, key)
    _check(value in choices, f"{key}={value!r} is not valid: choose one of {', '.join(choices)}")


def _validate(c: RunConfig) -> None:
    for f in fields(c):
        value = getattr(c, f.name)
        kind = FIELD_TYPES[f.name]
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        _check(ok, f"{f.name}={value!r} has the wrong type: it takes a {kind.__name__}")
    _one_of(c, "model", MODELS)
    _one_of(c, "freeze", FREEZE_POLICIES)
    _one_of(c, "augment", AUGMENTATIONS)
    _one_of(c, "device", DEVICES)
    _one_of(c, "precision", PRECISIONS)
    _one_of(c, "last_batch", LAST_BATCHES)
    _check(c.weights != "", "weights is empty: use none, imagenet or a path to a state dict")
    _check(
        c.freeze == "none" or c.weights != "none",
        f"freeze={c.freeze} needs pretrained weights: set weights=imagenet or weights=PATH",
    )
    _check(c.lr > 0, f"lr={c.lr} must be > 0: e.g. lr=0.01")
    _check(c.epochs >= 1, f"epochs={c.epochs} must be >= 1")
    _check(c.batch_size >= 1, f"batch_size={c.batch_size} must be >= 1: e.g. batch_size=256")
    _check(
        c.eval_batch_size >= 0,
        f"eval_batch_size={c.eval_batch_size} must be >= 0 (0: the same as batch_size)",
    )
    _check(c.step_size >= 1, f"step_size={c.step_size} must be >= 1")
    _check(0 < c.gamma <= 1, f"gamma={c.gamma} must be in (0, 1]: e.g. gamma=0.1")
    _check(0 <= c.momentum < 1, f"momentum={c.momentum} must be in [0, 1)")
    _check(c.weight_decay >= 0, f"weight_decay={c.weight_decay} must be >= 0")
    _check(0 < c.val_fraction < 1, f"val_fraction={c.val_fraction} must be in (0, 1): e.g. 0.5")
    _check(0 <= c.aug_p <= 1, f"aug_p={c.aug_p} must be in [0, 1]")
    _check(c.image_size >= 32, f"image_size={c.image_size} must be >= 32 (AlexNet needs 63+)")
    _check(
        c.model != "alexnet" or c.image_size >= 63,
        f"image_size={c.image_size} is too small for alexnet: use 63 or more (e.g. 64)",
    )
    _check(
        c.resize >= c.image_size,
        f"resize={c.resize} must be >= image_size={c.image_size}: the crop is taken from it",
    )
    _check(c.classes >= 0, f"classes={c.classes} must be >= 0 (0 = all classes)")
    _check(c.seed >= 0, f"seed={c.seed} must be >= 0")
    _check(c.threads >= 0, f"threads={c.threads} must be >= 0 (0 = every core)")
    _check(c.diverge_factor > 1, f"diverge_factor={c.diverge_factor} must be > 1")
    _check(c.diverge_patience >= 1, f"diverge_patience={c.diverge_patience} must be >= 1")
    _validate_limits(c)


# Beyond these a value is a typo, not a setting: numpy seeds stop at 2**32, thousands of OpenMP
# threads abort the process, and the decoded images (N x 3 x size x size bytes) fill the memory.
MAX_SEED = 2**32 - 1
MAX_THREADS = 256
MAX_IMAGE_SIZE = 1024
MAX_RESIZE = 2048
# counts far past any run (the report's: 30 epochs, batch 256): a run of 10^20 epochs or a batch
# of 10^20 images never ends or never allocates
MAX_COUNTS = {
    "epochs": 100_000,
    "step_size": 100_000,
    "batch_size": 2**20,
    "eval_batch_size": 2**20,
    "classes": 100_000,
    "diverge_patience": 1_000_000,
}


def _validate_limits(c: RunConfig) -> None:
    for f in fields(c):
        value = getattr(c, f.name)
        if isinstance(value, float):
            example = f"{f.name}={f.default}"
            _check(
                math.isfinite(value), f"{f.name}={value} must be a finite number: e.g. {example}"
            )
    _check(c.seed <= MAX_SEED, f"seed={c.seed} must be <= {MAX_SEED}: e.g. seed=0")
    _check(
        c.threads <= MAX_THREADS, f"threads={c.threads} must be <= {MAX_THREADS} (0 = every core)"
    )
    _check(
        c.image_size <= MAX_IMAGE_SIZE,
        f"image_size={c.image_size} must be <= {MAX_IMAGE_SIZE}: e.g. image_size=224",
    )
    _check(c.resize <= MAX_RESIZE, f"resize={c.resize} must be <= {MAX_RESIZE}: e.g. resize=256")
    defaults = {f.name: f.default for f in fields(c)}
    for key, most in MAX_COUNTS.items():
        value = getattr(c, key)
        _check(value <= most, f"{key}={value} must be <= {most}: e.g. {key}={defaults[key]}")


DEFAULTS = RunConfig()


def parse_set_options(items: list[str]) -> dict[str, str]:
    """`["lr=0.01", "epochs=2"]` -> `{"lr": "0.01", "epochs": "2"}`; later items win."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not key=value: write e.g. --set lr=0.01")
        overrides[key.strip()] = value
    return overrides


# --- presets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    study: str
    overrides: dict[str, Any]
    config: RunConfig
    path: Path


def presets_dir() -> Path:
    """$TUI_TRAINER_PRESETS, else the repo's `presets/` (editable install), else the wheel's."""
    env = os.environ.get("TUI_TRAINER_PRESETS")
    if env:
        if not Path(env).is_dir():  # else every preset reads "unknown", with an empty list
            raise ConfigError(
                f"TUI_TRAINER_PRESETS={env} is not a folder: point it at a folder of presets "
                "or unset it"
            )
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "presets", here / "presets"):
        if candidate.is_dir():
            return candidate
    return here.parent / "presets"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: bad TOML ({exc}): fix the file's syntax") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def load_preset_file(path: Path) -> Preset:
    data = read_toml(path)
    if "base" in data:  # sweep files live beside the presets (see studies/sweep_file.py)
        raise ConfigError(
            f"{path.stem} is a sweep, not a preset: run it with `tui-trainer sweep {path.stem}`"
        )
    meta = {k: data.pop(k) for k in PRESET_META_KEYS if k in data}
    unknown = [k for k in data if k not in FIELD_TYPES]
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}: use config keys ({', '.join(FIELD_TYPES)}) "
            f"or {', '.join(PRESET_META_KEYS)}"
        )
    try:
        config = RunConfig().with_overrides(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return Preset(
        name=path.stem,
        description=str(meta.get("description", "")),
        study=str(meta.get("study", "Other")),
        overrides=data,
        config=config,
        path=path,
    )


def list_presets(directory: Path | None = None) -> list[Preset]:
    directory = directory or presets_dir()
    paths = sorted(p for p in directory.glob("*.toml") if not p.name.startswith("_"))
    return [load_preset_file(p) for p in paths if "base" not in read_toml(p)]


def load_preset(name: str, directory: Path | None = None) -> Preset:
    directory = directory or presets_dir()
    path = Path(name)
    if path.suffix == ".toml" and path.is_file():
        return load_preset_file(path)
    path = directory / f"{name}.toml"
    if not path.is_file():
        names = sorted(p.stem for p in directory.glob("*.toml"))
        raise ConfigError(
            f"unknown preset {name!r}: choose one of {', '.join(names)} (see `tui-trainer presets`)"
        )
    return load_preset_file(path)


def build_config(preset: str, overrides: dict[str, Any] | None = None) -> tuple[Preset, RunConfig]:
    """The one way a front end turns a preset name plus overrides into a validated config."""
    loaded = load_preset(preset)
    return loaded, loaded.config.with_overrides(overrides or {})


def eval_batch(config: RunConfig) -> int:
    """Images per forward pass when evaluating: `eval_batch_size`, else `batch_size`."""
    return config.eval_batch_size or config.batch_size
