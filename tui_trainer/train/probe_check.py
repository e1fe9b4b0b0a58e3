"""The precision probe's prediction against the engine's first epoch: a probe that is off by
more than MISPREDICT either way says so in the run's log (and `bench` shows the same line)."""

from __future__ import annotations

from collections.abc import Mapping, Sized
from typing import TYPE_CHECKING

from tui_trainer.events import EventCallback, Log
from tui_trainer.train.precision_probe import ProbeResult, forget

if TYPE_CHECKING:
    from tui_trainer.train.preparation import Prepared
    from tui_trainer.train.topology import Topology

MISPREDICT = 1.5  # a first epoch this much faster or slower than predicted is reported


def predicted_seconds(
    result: ProbeResult, precision: str, n_train: int, n_val: int, world: int = 1
) -> float | None:
    """An epoch's train and evaluation seconds (a pass over train, evaluations of train and
    val) at the probe's rates for `precision` per process; None without a usable figure."""
    rate = next((r for r in result.rates if r.precision == precision and r.usable), None)
    if rate is None or not rate.train_ips or not rate.eval_ips:
        return None
    return (n_train / rate.train_ips + (n_train + n_val) / rate.eval_ips) / world


def check_epoch(  # noqa: PLR0913 - each names one part of the comparison
    result: ProbeResult,
    precision: str,
    n_train: int,
    n_val: int,
    seconds: float,
    world: int = 1,
    run_id: str = "",
) -> Log | None:
    """The line comparing a first epoch (train + evaluation `seconds`) with the prediction: a
    warning when it is off by more than MISPREDICT either way."""
    predicted = predicted_seconds(result, precision, n_train, n_val, world)
    if predicted is None or seconds <= 0:
        return None
    off = max(predicted / seconds, seconds / predicted)
    text = (
        f"precision check: epoch 1 {n_train / seconds:.1f} img/s, "
        f"probe {n_train / predicted:.1f} ({precision})"
    )
    if off > MISPREDICT:
        return Log(run_id=run_id, message=f"{text}: mispredicted {off:.1f}x", level="warning")
    return Log(run_id=run_id, message=f"{text}: within {MISPREDICT}x")


def after_first_epoch(
    prep: Prepared,
    data: Mapping[str, Sized],
    topology: Topology,
    seconds: float,
    emit: EventCallback,
    run_id: str,
) -> None:
    """Emit the check when precision=auto measured this run (not for a head trained on cached
    features: the probe timed the whole model); a misprediction also drops the cached decision,
    so the next run measures again (a probe timed on a busy machine is not kept)."""
    if prep.precision_probe is None or "frozen_features" in prep.fast_paths:
        return
    world = topology.world_size if topology.active else 1
    n_train, n_val = len(data["train"]), len(data["val"])
    log = check_epoch(prep.precision_probe, prep.precision, n_train, n_val, seconds, world, run_id)
    if log is not None:
        emit(log)
    if log is not None and log.level == "warning":
        forget(prep.precision_probe.key)
