"""How long a run will take, before it starts: its training images x epochs over the epoch rate
the precision probe measured for its setup (train/precision_probe.py's cache), in the precision
the run would pick. Nothing is measured here: a setup not timed yet has no estimate.

torch is imported inside the functions: the console imports this module at startup and calls it
from a worker thread only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.errors import UserError


def format_duration(seconds: float) -> str:
    """ "4h10m", "12m", "40s": a start's scale at a glance."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass(frozen=True)
class Estimate:
    """Seconds for the runs asked about, or why there is no figure (`missing`)."""

    seconds: float | None  # None: a run's setup has no measured rate (or its data no split)
    images: int  # training images per epoch, summed over the runs
    epochs: int  # epochs left to train, over every run
    missing: str = ""  # why `seconds` is None
    rate: str = ""  # the first run's rate and precision ("11.6 img/s fp32")
    runs: int = 1

    def describe(self) -> str:
        """One line for the Start dialog."""
        if self.seconds is None:
            return f"no estimate yet: {self.missing}"
        if self.runs > 1:
            return (
                f"about {format_duration(self.seconds)} for {self.runs} runs, "
                f"{self.epochs} epochs in all (as timed on this machine)"
            )
        return (
            f"about {format_duration(self.seconds)}: {self.images:,} training images x "
            f"{self.epochs} epoch(s) at {self.rate} (as timed on this machine)"
        )


@functools.lru_cache(maxsize=32)
def _train_images(data_dir: Path, classes: int, seed: int, val_fraction: float) -> int:
    """The training split's size, as the run splits it (cached: listing can take a second)."""
    from tui_trainer.data.layout import find_layout, make_splits

    config = RunConfig(classes=classes, seed=seed, val_fraction=val_fraction)
    return len(make_splits(find_layout(data_dir), config).train)


def _rate(config: RunConfig) -> tuple[float, str]:
    """(epoch img/s, precision) from the probe's cache; UserError saying why there is none."""
    from tui_trainer.train.hardware import resolve_device
    from tui_trainer.train.host import cpu_threads
    from tui_trainer.train.precision_probe import cache_path, cached_rates, choose, probe_key

    device = resolve_device(config.device)
    threads = cpu_threads(config.threads)  # as a run of one process takes them
    rates = cached_rates(probe_key(config, device, threads), cache_path())
    what = f"{config.model} at {config.image_size} px"
    if rates is None:
        raise UserError(f"{what} has not been timed on this {device.type} (its first run does)")
    wanted = choose(rates) if config.precision == "auto" else config.precision
    rate = next((r for r in rates if r.precision == wanted and r.usable), None)
    if rate is None or rate.epoch_ips is None:
        raise UserError(f"{wanted} has not been timed for {what} on this {device.type}")
    return rate.epoch_ips, wanted


def estimate(runs: list[tuple[RunConfig, int]], data_dir: Path) -> Estimate:
    """The time to train each (config, epochs left) of `runs` on `data_dir`, one after another."""
    seconds, images, epochs, rate = 0.0, 0, 0, ""
    for config, left in runs:
        try:
            count = _train_images(Path(data_dir), config.classes, config.seed, config.val_fraction)
            ips, precision = _rate(config)
        except UserError as exc:
            return Estimate(None, images, epochs + left, str(exc), runs=len(runs))
        seconds += count * left / ips
        images, epochs = images + count, epochs + left
        rate = rate or f"{ips:.1f} img/s {precision}"
    return Estimate(seconds, images, epochs, rate=rate, runs=len(runs))
