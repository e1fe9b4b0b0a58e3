"""The checkpoints of a run folder, written and read here side by side.

- last.pt: everything a resume continues from, at the end of the last completed epoch: the model,
  optimizer, scheduler and scaler state dicts, the `TrainState` and the seconds trained so far.
  Tensors and plain types only, so `torch.load(..., weights_only=True)` reads it. A last.pt that
  also holds numpy's RNG state and the config loads through an allow-list (`_legacy_globals`);
  those keys are not read: a resume reseeds every epoch.
- best.pt: {"model", "epoch", "val_acc"}, the best-val weights.

Both are written by a background thread (`checkpoint_writer.py`, which also states the order of
an epoch's metrics row and its checkpoints). A completed run keeps best.pt only: last.pt is
removed once its summary says `completed`, unless `keep_last=true`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tui_trainer.errors import UserError, writing
from tui_trainer.files import load_error_reason, load_tensors, save_checkpoint_atomic

LAST_FILE = "last.pt"
BEST_FILE = "best.pt"


@dataclass
class TrainState:
    """What survives an epoch boundary; all of it goes into last.pt."""

    epoch: int = 0  # last completed epoch
    global_step: int = 0
    best_epoch: int = 0
    best_val_acc: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)
    first_loss: float | None = None
    high_loss_steps: int = 0


@dataclass(frozen=True)
class Checkpoint:
    """last.pt's contents, plus the best weights a resume carries on with (from best.pt, or
    last.pt's own weights when its epoch was the best; None when neither has them)."""

    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]  # empty unless fp16
    state: TrainState
    seconds: float  # trained so far, the epochs of earlier attempts included
    best_model: dict[str, Any] | None = None  # not stored in last.pt

    @property
    def epoch(self) -> int:
        return self.state.epoch

    def save(self, run_dir: Path) -> None:
        """Raises StorageError when last.pt cannot be written; the previous one stays."""
        _save(
            Path(run_dir) / LAST_FILE,
            {
                "model": self.model,
                "optimizer": self.optimizer,
                "scheduler": self.scheduler,
                "scaler": self.scaler,
                "epoch": self.state.epoch,
                "state": dataclasses.asdict(self.state),
                "seconds": self.seconds,
            },
        )

    @classmethod
    def load(cls, run_dir: Path) -> Checkpoint:
        """last.pt plus the best weights. Raises UserError (one line) when it is missing or
        unreadable."""
        path = Path(run_dir) / LAST_FILE
        if not path.is_file():
            raise UserError(f"{run_dir} has no last.pt (no epoch finished): start it again instead")
        try:
            with torch.serialization.safe_globals(_legacy_globals()):
                raw = load_tensors(path)
        except Exception as exc:  # noqa: BLE001 - written atomically: only outside damage
            raise UserError(
                f"{path} is unreadable ({type(exc).__name__}): delete it to resume from the "
                f"start ({load_error_reason(exc)})"
            ) from None
        try:
            ckpt = cls._from_raw(raw)
        except Exception as exc:  # noqa: BLE001 - loaded, but not what save() writes
            raise UserError(
                f"{path} is unreadable ({type(exc).__name__}): delete it to resume from the "
                "start (it loads, but is not a last.pt of ours)"
            ) from None
        return dataclasses.replace(ckpt, best_model=ckpt._best_weights(Path(run_dir)))

    @classmethod
    def _from_raw(cls, raw: Any) -> Checkpoint:
        """What `save` wrote, checked: state dicts are dicts, the state a TrainState."""
        parts = [raw["model"], raw["optimizer"], raw["scheduler"], raw.get("scaler") or {}]
        if not all(isinstance(part, dict) for part in parts):
            raise TypeError("a state dict is not a dict")
        if not all(isinstance(v, torch.Tensor) for v in raw["model"].values()):
            raise TypeError("the model state holds more than tensors")
        return cls(*parts, TrainState(**raw["state"]), float(raw.get("seconds", 0.0)))

    def _best_weights(self, run_dir: Path) -> dict[str, Any] | None:
        best = load_best(run_dir / BEST_FILE)
        if best.get("epoch") == self.state.best_epoch:
            return best["model"]
        if self.state.best_epoch == self.state.epoch:
            return self.model
        return None


def save_best(run_dir: Path, weights: dict[str, torch.Tensor], epoch: int, val_acc: float) -> None:
    _save(Path(run_dir) / BEST_FILE, {"model": weights, "epoch": epoch, "val_acc": val_acc})


def remove_last(run_dir: Path) -> None:
    """Delete a completed run's last.pt: only a resume reads it, and a completed run never
    resumes. Call it after the summary says `completed`, never before: a kill in between must
    leave a folder that still resumes. A removal that fails leaves a completed run with a
    last.pt, as `keep_last=true` does: nothing to report."""
    with contextlib.suppress(OSError):
        (Path(run_dir) / LAST_FILE).unlink(missing_ok=True)


def _save(path: Path, state: dict[str, Any]) -> None:
    """An atomic save (no temp file left behind); a disk full, a quota, a read-only or an
    unwritable folder (reported at write, fsync, close or rename) raises StorageError."""
    with writing(path):
        save_checkpoint_atomic(path, state)


def load_best(path: Path) -> dict[str, Any]:
    """best.pt's contents; {} when it is missing or damaged (last.pt may still hold the best)."""
    try:
        best = load_tensors(path)
    except Exception:  # noqa: BLE001 - missing or damaged
        return {}
    if not isinstance(best, dict) or not isinstance(best.get("model"), dict):
        return {}  # loaded, but not a best.pt: a resume carries on without it
    return best


def _legacy_globals() -> list[Any]:
    """What an old last.pt's numpy RNG state needs beyond weights_only's defaults: its array
    (ndarray, dtype, the reconstructor) under numpy 1's and numpy 2's module names."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    allowed: list[Any] = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed.append((_reconstruct, f"{module}._reconstruct"))
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: a class per dtype
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in ("UInt32DType", "Int64DType", "Float64DType")]
    return allowed
