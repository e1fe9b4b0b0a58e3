"""A run's summary figures from its epochs: what summary.json and the RunEnded event carry."""

from __future__ import annotations

from typing import Any

from tui_trainer.train.checkpoint import TrainState
from tui_trainer.train.preparation import Prepared


def run_summary(state: TrainState, prep: Prepared, seconds: float) -> dict[str, Any]:
    best = next((h for h in state.history if h["epoch"] == state.best_epoch), None)
    last = state.history[-1] if state.history else None
    return {
        "best_epoch": state.best_epoch or None,
        "max_val_acc": best["val_acc"] if best else None,
        "final_train_loss": last["train_loss"] if last else None,
        "accuracy_gap": best["train_acc"] - best["val_acc"] if best else None,
        "loss_gap": best["val_loss"] - best["train_loss"] if best else None,
        "epochs_done": state.epoch,
        "seconds": round(seconds, 3),
        "skipped_images": len(prep.skipped),
        "num_train": len(prep.tensors["train"]),
        "num_val": len(prep.tensors["val"]),
        "num_test": len(prep.tensors["test"]),
        "test_acc": None,
        "test_loss": None,
    }
