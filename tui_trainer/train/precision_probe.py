"""`precision=auto`: decided by timing the run's own model, once per machine and setup.

Whether bf16 autocast pays cannot be read off a flag list: it trains several times faster than
fp32 on a CPU with AMX, faster with AVX512-BF16 alone, and several times slower on an AVX2-only
CPU, where it is emulated. So the first time a `ProbeKey` is seen (the hardware, the model and
freeze policy, the image size, the run's train and evaluation batches per process, the threads,
the torch version) a fresh model of the run's architecture is timed in fp32 and each challenger
(bf16; fp16 too on a CUDA GPU without native bf16): train steps and evaluation batches on random
images, at the run's batches or the largest that fit the time budget (precision_timing). The
batch matters: autocast's weight casts and the optimizer cost the same at any batch, so bf16 can
lose at a small batch and win at the run's on the same CPU.
The rates are cached in `cache_dir()/precision-probe.json`; `choose` decides from them.

- The rule (`choose`): a challenger wins only when its protocol-epoch rate is at least
  `SPEEDUP` (1.2x) fp32's. The epoch rate weighs both measurements the way the engine spends an
  epoch: one train step per training image and `EVAL_PER_TRAIN` (2) evaluated images per
  training image (train and a validation split of the same size, as the report splits it), so
  a challenger that only trains faster but evaluates much slower does not win.
- The cap (precision_timing): fp32 is measured in full; each challenger's phase is cut after
  `CAP_S` seconds (or the time fp32 took to get as far, if longer), within a layer of the cut,
  and on a CPU once a first step on two images takes longer than fp32's on the measured batch.
  One cut before a timed step is done is `capped`: too slow to measure, it never wins.
- Nothing of the run changes: a fresh model of its architecture without pretrained weights
  (nothing is downloaded), and the RNG state, thread count and cuDNN flag put back.
- The frozen-features fast path (freeze=conv) trains the head on cached features; the probe
  times the whole model with its freeze policy, which is what the feature pass and the
  evaluation cost.
- The cache key holds the run's batches per process (the decision is made for them); each
  rate records the batch it was timed at.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from tui_trainer.config import RunConfig, eval_batch
from tui_trainer.events import EventCallback, Log
from tui_trainer.files import cache_dir, write_json_atomic
from tui_trainer.train.hardware import cuda_has_native_bf16, hardware_name
from tui_trainer.train.precision_timing import CAP_S, RAMP_S, CandidateRate, measure

SPEEDUP = 1.2  # a challenger must be this much faster than fp32 to be picked
CACHE_NAME = "precision-probe.json"
CACHE_VERSION = 2  # bump when what is measured changes: older entries are then measured again


@dataclass(frozen=True)
class ProbeKey:
    """Everything that decides the answer; a change of any of it measures again."""

    device: str  # cpu | cuda
    hardware: str  # hardware.hardware_name: the GPU, or the CPU model and its flags
    model: str
    freeze: str
    image_size: int
    batch: int  # the run's train batch per process: what the decision is for
    eval_batch: int  # the run's evaluation batch per process
    threads: int
    torch: str

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ProbeResult:
    key: ProbeKey
    rates: tuple[CandidateRate, ...]
    choice: str
    cached: bool  # read from the cache, not measured by this process
    seconds: float  # how long the measurement took (when it was made)

    def to_record(self) -> dict[str, Any]:
        """What config.json keeps beside the resolved config."""
        return {
            "choice": self.choice,
            "rule": f"epoch rate >= {SPEEDUP}x fp32's",
            "cached": self.cached,
            "seconds": round(self.seconds, 2),
            "key": asdict(self.key),
            "rates": [asdict(r) for r in self.rates],
        }


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run uses and, when `precision=auto` measured it, the probe behind it."""

    precision: str
    probe: ProbeResult | None = None


def choose(rates: Sequence[CandidateRate], speedup: float = SPEEDUP) -> str:
    """fp32 (the baseline) unless a usable challenger's epoch rate is at least `speedup` times
    fp32's: then the fastest such one. Without an fp32 figure (it failed): fp32."""
    baseline = next((r for r in rates if r.precision == "fp32"), None)
    if baseline is None or baseline.epoch_ips is None:
        return "fp32"
    bar = speedup * baseline.epoch_ips
    winners = [r for r in rates if r.precision != "fp32" and r.usable and r.epoch_ips >= bar]
    return max(winners, key=lambda r: r.epoch_ips).precision if winners else "fp32"


def candidates(device: torch.device) -> tuple[str, ...]:
    """The precisions worth timing on `device`; fp32 first (the baseline). On MPS: fp32 alone
    (autocast there is not one the engine has been checked with)."""
    if device.type == "cuda":
        return ("fp32", "bf16") if cuda_has_native_bf16() else ("fp32", "bf16", "fp16")
    if device.type == "cpu":
        return ("fp32", "bf16")
    return ("fp32",)


def probe_key(config: RunConfig, device: torch.device, threads: int, world: int = 1) -> ProbeKey:
    """`world`: the run's processes (torchrun), each of which takes its share of the batches."""
    return ProbeKey(
        device=device.type,
        hardware=hardware_name(device),
        model=config.model,
        freeze=config.freeze,
        image_size=config.image_size,
        batch=max(1, config.batch_size // world),
        eval_batch=max(1, eval_batch(config) // world),
        threads=threads,
        torch=torch.__version__,
    )


def decide(
    config: RunConfig,
    device: torch.device,
    threads: int,
    stop: threading.Event | None = None,
    say: EventCallback | None = None,
    world: int = 1,
) -> PrecisionChoice:
    """The run's precision: an explicit one as it is (checked where the run prepares), `auto`
    from the probe (cached or measured now); fp32 where there is nothing to compare."""
    if config.precision != "auto":
        return PrecisionChoice(config.precision)
    if len(candidates(device)) == 1:
        return PrecisionChoice("fp32")
    result = probe(config, device, threads=threads, stop=stop, say=say, world=world)
    return PrecisionChoice(result.choice, result)


def budget_s(device: torch.device) -> float:
    """About how long the baseline's ramp may climb for, per phase (the log line says it)."""
    return RAMP_S.get(device.type, RAMP_S["cpu"])


def cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def probe(  # noqa: PLR0913 - keyword-only, each names one part of the request
    config: RunConfig,
    device: torch.device,
    *,
    threads: int,
    stop: threading.Event | None = None,
    say: EventCallback | None = None,
    cap_s: float = CAP_S,
    use_cache: bool = True,
    world: int = 1,
) -> ProbeResult:
    """The rates of every candidate on this setup, from the cache or measured now (and cached),
    and the choice. Raises `Stopped` if `stop` is set while measuring."""
    say = say or (lambda event: None)
    key = probe_key(config, device, threads, world)
    path = cache_path()
    rates = cached_rates(key, path) if use_cache else None
    if rates is not None:
        return ProbeResult(key, rates, choose(rates), cached=True, seconds=0.0)
    names = candidates(device)
    say(
        Log(
            run_id="",
            message=f"precision=auto: timing {' and '.join(names)} at train batch "
            f"{key.batch}, eval batch {key.eval_batch}, or the largest that fit "
            f"~{budget_s(device):.0f} s (once)",
        )
    )
    t0 = time.perf_counter()
    rates = measure(
        config,
        device,
        names,
        batch=key.batch,
        eval_batch=key.eval_batch,
        threads=key.threads,
        cap_s=cap_s,
        stop=stop,
    )
    result = ProbeResult(key, rates, choose(rates), False, time.perf_counter() - t0)
    try:
        store_rates(key, rates, path)
    except OSError as exc:  # an unwritable cache costs a measurement next time, not the run
        say(
            Log(
                run_id="",
                message=f"could not cache the precision probe in {path}: {exc.strerror}",
                level="warning",
            )
        )
    for line in table_lines(result):
        say(Log(run_id="", message=line))
    return result


# --- the cache and the table -------------------------------------------------------------------


def _read_entries(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or damaged: measured again and rewritten
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def cached_rates(key: ProbeKey, path: Path) -> tuple[CandidateRate, ...] | None:
    entry = _read_entries(path).get(key.digest())
    if not isinstance(entry, dict) or entry.get("key") != asdict(key):
        return None
    try:
        rates = tuple(CandidateRate(**r) for r in entry["rates"])
    except (KeyError, TypeError):
        return None
    return rates if all(_well_typed(r) for r in rates) else None  # else: measured again


def _well_typed(rate: CandidateRate) -> bool:
    def ips(value: Any) -> bool:
        return value is None or (type(value) in (int, float) and value >= 0)

    return (
        isinstance(rate.precision, str)
        and ips(rate.train_ips)
        and ips(rate.eval_ips)
        and isinstance(rate.capped, bool)
        and isinstance(rate.error, str)
        and type(rate.train_batch) is int
        and type(rate.eval_batch) is int
    )


def store_rates(key: ProbeKey, rates: Sequence[CandidateRate], path: Path) -> None:
    """Add (or replace) `key`'s entry, atomically. Two processes probing at once: the last
    write wins and the other's entry is measured again some other time."""
    entries = _read_entries(path)
    entries[key.digest()] = {
        "key": asdict(key),
        "rates": [asdict(r) for r in rates],
        "measured_at": time.time(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"version": CACHE_VERSION, "entries": entries})


def forget(key: ProbeKey, path: Path | None = None) -> None:
    """Drop `key`'s entry (a decision the run's own epoch contradicted): measured again next
    time. A cache that cannot be rewritten keeps it."""
    path = path or cache_path()
    entries = _read_entries(path)
    if entries.pop(key.digest(), None) is not None:
        with contextlib.suppress(OSError):
            write_json_atomic(path, {"version": CACHE_VERSION, "entries": entries})


def _ips(value: float | None, capped: bool) -> str:
    if value is None:
        return "-"
    return f"~{value:.1f}" if capped else f"{value:.1f}"  # capped: from the steps it began


def measured_line(result: ProbeResult) -> str:
    """The batches the rates were timed at, and whether they stand for the run's, per image."""
    base = next((r for r in result.rates if r.train_batch or r.eval_batch), None)
    if base is None:
        return "nothing timed"
    k = result.key
    at = f"timed at batch {base.train_batch} (eval {base.eval_batch})"
    if (base.train_batch, base.eval_batch) == (k.batch, k.eval_batch):
        return f"{at}: the run's"
    return f"{at} and half: extrapolated to the run's {k.batch} (eval {k.eval_batch})"


def table_lines(result: ProbeResult) -> list[str]:
    """The probe as a small table: one row per precision, then the choice."""
    k = result.key
    where = "cached" if result.cached else f"measured in {result.seconds:.1f} s"
    lines = [
        f"precision probe ({where}): {k.model} freeze={k.freeze}, {k.image_size} px, "
        f"batch {k.batch}, eval batch {k.eval_batch}, {k.threads} threads, torch {k.torch}, "
        f"{k.hardware}",
        f"  {'precision':<9} {'train img/s':>11} {'eval img/s':>10} {'epoch img/s':>11}  note",
    ]
    base = next((r.epoch_ips for r in result.rates if r.precision == "fp32"), None)
    for r in result.rates:
        ratio = f"{r.epoch_ips / base:.2f}x fp32" if r.epoch_ips and base else ""
        note = r.error or ("capped: too slow" if r.capped else ratio)
        train, evaluate = _ips(r.train_ips, r.capped), _ips(r.eval_ips, r.capped)
        epoch = _ips(r.epoch_ips, r.capped)
        lines.append(f"  {r.precision:<9} {train:>11} {evaluate:>10} {epoch:>11}  {note}")
    lines.append(f"  choice: {result.choice} (a challenger needs {SPEEDUP}x fp32's epoch rate)")
    lines.append(f"  {measured_line(result)}")
    return lines
