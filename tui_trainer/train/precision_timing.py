"""Timing the precisions for `precision=auto` (precision_probe decides from these figures).

Each candidate's two phases (train steps, evaluation batches) run warm-up steps, then a few timed
ones, on random images through a fresh model of the run's architecture (no pretrained weights:
timing does not depend on them, and nothing is downloaded). The model checks the phase's deadline
at every layer, forward and backward, so an emulated bf16 step that would take a minute is cut
within a layer of the cap (one emulated layer can itself take seconds: on a busy 2-core AVX2
EPYC, AlexNet's bf16 step at batch 8 was cut at 9 s for a 5 s cap). fp32 is the baseline and
never cut; a challenger cut before one timed step is done is `capped`: too slow to measure. The
RNG state, the thread count and cuDNN's benchmark flag are left as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.errors import Stopped
from tui_trainer.train.hardware import autocast_dtype, sync
from tui_trainer.train.models import apply_freeze, build_model, set_train_mode

CAP_S = 3.0  # seconds per phase (train, eval) of one challenger, warm-up included
EVAL_PER_TRAIN = 2.0  # images an epoch evaluates per training image (the train and val splits)
# (warm-up steps, timed steps, largest batch): a GPU's small batches are launch-bound, so it gets
# a larger one (or bf16's gain would not show) and more steps (each takes milliseconds)
PLAN = {"cpu": (1, 2, 8), "cuda": (2, 5, 32)}
# On a CPU a challenger first takes one step on SCOUT_BATCH images, cut once it has taken longer
# than fp32's first step on the whole batch (at least SCOUT_FLOOR_S: a first step also creates
# its kernels): one that slow cannot be faster on the batch. An emulated bf16 layer on the whole
# batch can take seconds before the cap is checked again; on two images, a quarter of that.
SCOUT_BATCH = 2  # not 1: train-mode BatchNorm needs two values per channel (ResNet's last maps)
SCOUT_FLOOR_S = 1.0
PROBE_CLASSES = 101  # the head's width when the config does not limit the classes


@dataclass(frozen=True)
class CandidateRate:
    """One precision's measured img/s; None: not measured (a capped train phase skips eval)."""

    precision: str
    train_ips: float | None
    eval_ips: float | None
    capped: bool = False  # cut by the cap before a timed step was done: slow, never picked
    error: str = ""  # it could not run at all here (the message, first line)

    @property
    def usable(self) -> bool:
        return not self.capped and not self.error and self.epoch_ips is not None

    @property
    def epoch_ips(self) -> float | None:
        """Training images per second of a protocol epoch: train + EVAL_PER_TRAIN evaluated."""
        if not self.train_ips or not self.eval_ips:
            return None
        return 1.0 / (1.0 / self.train_ips + EVAL_PER_TRAIN / self.eval_ips)


class OverCap(Exception):
    """A step ran past its phase's time cap."""


@dataclass(frozen=True)
class Deadline:
    at: float
    clock: Callable[[], float] = time.perf_counter
    stop: threading.Event | None = None

    def check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Stopped("stopped while timing precision=auto")
        if self.clock() > self.at:
            raise OverCap


@dataclass(frozen=True)
class PhaseTiming:
    """Seconds of one step: the median of the timed steps; when capped, the longest step seen
    (the cut one counted up to the cut), a rough figure."""

    seconds_per_step: float
    steps: int  # timed steps done
    capped: bool
    first_done_s: float = math.inf  # from the start to the end of the first timed step
    first_step_s: float = math.inf  # the first step (a warm-up one): it creates the kernels


def time_steps(  # noqa: PLR0913 - keyword-only, each names one part of the request
    step: Callable[[Deadline], None],
    *,
    warmup: int,
    steps: int,
    cap_s: float,
    cut: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    stop: threading.Event | None = None,
) -> PhaseTiming:
    """Run `step` `warmup` + `steps` times within `cap_s` seconds and time the last `steps`.
    `step` may call `Deadline.check` as it goes, which raises OverCap past the cap (`cut`; else
    the phase always gets one timed step, however long). Cut before a timed step is done:
    capped. Once one is done the phase ends with what it has, and no step starts that the last
    one says would end past the cap."""
    start = clock()
    cap_at = start + cap_s
    deadline = Deadline(cap_at if cut else math.inf, clock, stop)
    times: list[float] = []
    longest, first_done, first_step = 0.0, math.inf, math.inf
    for i in range(warmup + steps):
        if times and clock() + times[-1] > cap_at:
            break
        t0 = clock()
        try:
            deadline.check()
            step(deadline)
        except OverCap:
            if times:
                break
            return PhaseTiming(max(longest, clock() - t0), 0, capped=True)
        elapsed = clock() - t0
        longest = max(longest, elapsed)
        first_step = min(first_step, elapsed) if i == 0 else first_step
        if i >= warmup:
            times.append(elapsed)
            first_done = min(first_done, clock() - start)
    return PhaseTiming(statistics.median(times), len(times), False, first_done, first_step)


class _Checkpoints:
    """Hooks that check the current deadline at every layer: forward pre-hooks on each module and
    gradient hooks on each trained parameter (run as backward reaches it)."""

    def __init__(self, model: nn.Module) -> None:
        self.deadline: Deadline | None = None
        for module in model.modules():
            module.register_forward_pre_hook(lambda *_: self.check())
        for p in model.parameters():
            if p.requires_grad:
                p.register_hook(lambda grad: self.check())

    def check(self) -> None:
        if self.deadline is not None:
            self.deadline.check()


def measure(  # noqa: PLR0913 - keyword-only, each names one part of the request
    config: RunConfig,
    device: torch.device,
    precisions: Sequence[str],
    *,
    batch: int,
    threads: int,
    cap_s: float = CAP_S,
    stop: threading.Event | None = None,
) -> tuple[CandidateRate, ...]:
    """Time each precision on a fresh model of the run's architecture, the first (fp32) as the
    baseline: never cut, it gets one timed step per phase however long. A challenger's phase is
    cut at `cap_s`, or later if the baseline took longer to reach its first timed step (one 1.2x
    faster gets there in less time); on a CPU after a scout step (SCOUT_BATCH). The RNG state,
    threads and cuDNN flag are as they were afterwards."""
    warmup, steps, _ = PLAN.get(device.type, PLAN["cpu"])
    with _isolated(device, threads):
        model = build_model(config.model, config.classes or PROBE_CLASSES, "none")
        model = model.to(device, memory_format=torch.channels_last)
        trained = apply_freeze(model, config.model, config.freeze)
        # lr 0: the same arithmetic as the run's SGD, and weights that stay finite
        opt = torch.optim.SGD(
            trained, lr=0.0, momentum=config.momentum, weight_decay=config.weight_decay
        )
        shape = (batch, 3, config.image_size, config.image_size)
        x = torch.randn(shape, device=device).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, config.classes or PROBE_CLASSES, (batch,), device=device)
        timer = _Timer(_Checkpoints(model), device, batch, warmup, steps, cap_s, stop)
        rates: list[CandidateRate] = []
        # None: the baseline's phase (fp32, first); then what it leaves the challengers
        limits: dict[str, ChallengerLimits | None] = {"train": None, "eval": None}
        for precision in precisions:
            phases = _steps(model, opt, x, y, config, precision)
            rate, timings = _rate(precision, timer.phase, phases, limits, batch)
            if not rates:
                limits = {p: ChallengerLimits.after(timings.get(p), cap_s, device) for p in limits}
            rates.append(rate)
        timer.checks.deadline = None
    return tuple(rates)


@dataclass(frozen=True)
class _Timer:
    """Times the phases of the probe model, its layers checking the deadline."""

    checks: _Checkpoints
    device: torch.device
    batch: int
    warmup: int
    steps: int
    cap_s: float
    stop: threading.Event | None

    def _run(self, step: Callable[[int], None], n: int) -> Callable[[Deadline], None]:
        def checked(deadline: Deadline) -> None:
            self.checks.deadline = deadline
            step(n)
            sync(self.device)

        return checked

    def phase(self, step: Callable[[int], None], limits: ChallengerLimits | None) -> PhaseTiming:
        """`limits` None: the baseline's phase, never cut."""
        plan = {"warmup": self.warmup, "steps": self.steps, "stop": self.stop}
        if limits is None:
            return time_steps(self._run(step, self.batch), cap_s=self.cap_s, cut=False, **plan)
        if limits.scout_s is not None and self.batch > SCOUT_BATCH:
            scout = self._run(step, SCOUT_BATCH)
            scout = time_steps(scout, warmup=0, steps=1, cap_s=limits.scout_s, stop=self.stop)
            if scout.capped:  # slower on two images than fp32 on the batch: slower on it
                # its per-image time up to the cut, for the batch: a rough (high) figure
                per_batch = scout.seconds_per_step * self.batch / SCOUT_BATCH
                return dataclasses.replace(scout, seconds_per_step=per_batch)
        return time_steps(self._run(step, self.batch), cap_s=limits.cap_s, **plan)


@dataclass(frozen=True)
class ChallengerLimits:
    """A challenger's limits in one phase, from the baseline's timing of it."""

    cap_s: float
    scout_s: float | None  # None: no single-image step first (GPUs)

    @classmethod
    def after(
        cls, baseline: PhaseTiming | None, cap_s: float, device: torch.device
    ) -> ChallengerLimits:
        """A challenger 1.2x faster than the baseline reaches its first timed step sooner than the
        baseline did: the cap is never below that. A phase the baseline could not time: the plain
        cap."""
        if baseline is None:
            return cls(cap_s, None)
        scout = max(SCOUT_FLOOR_S, baseline.first_step_s) if device.type == "cpu" else None
        return cls(max(cap_s, baseline.first_done_s), scout)


def _steps(model, opt, x, y, config: RunConfig, precision: str) -> dict[str, Callable[[int], None]]:
    """A train step and an evaluation batch of the first n images in `precision`, as the engine
    runs them."""
    dtype = autocast_dtype(precision)
    scaler = torch.amp.GradScaler(x.device.type, enabled=precision == "fp16")
    criterion = nn.CrossEntropyLoss()

    def train(n: int) -> None:
        set_train_mode(model, config.model, config.freeze)
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x[:n])
        loss = criterion(logits.float(), y[:n])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    @torch.no_grad()
    def evaluate(n: int) -> None:
        model.eval()
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            model(x[:n])

    return {"train": train, "eval": evaluate}


def _rate(precision: str, timed, phases, limits, batch: int):
    """The candidate's rates and its timings by phase (only the phases it got through)."""
    timings: dict[str, PhaseTiming] = {}
    try:
        for phase in ("train", "eval"):
            timings[phase] = timed(phases[phase], limits[phase])
            if timings[phase].capped:  # too slow: the rest cannot save it
                break
    except RuntimeError as exc:  # e.g. this autocast dtype is not supported on this device
        return CandidateRate(precision, None, None, error=str(exc).splitlines()[0][:200]), {}
    ips = {p: batch / t.seconds_per_step for p, t in timings.items()}
    capped = any(t.capped for t in timings.values())
    return CandidateRate(precision, ips.get("train"), ips.get("eval"), capped), timings


@contextlib.contextmanager
def _isolated(device: torch.device, threads: int) -> Iterator[None]:
    """Time with the run's thread count and cuDNN autotuning (as the engine trains), and leave
    the RNG state, the thread count and the cuDNN flag as they were."""
    cuda = []
    if device.type == "cuda":
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    threads_before, benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    with torch.random.fork_rng(devices=cuda):
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = device.type == "cuda"
        try:
            yield
        finally:
            torch.set_num_threads(threads_before)
            torch.backends.cudnn.benchmark = benchmark
            if device.type == "cuda":
                torch.cuda.empty_cache()
