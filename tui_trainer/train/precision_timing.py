"""Timing the precisions for `precision=auto` (precision_probe decides from these figures).

Each phase (train steps, evaluation batches) is timed at the run's batch, or the largest that
fits the time budget: fp32 (the baseline, never cut) climbs doubling batches, a step each, while
the next fits `RAMP_S`, then takes warm-up steps (oneDNN and cuDNN build kernels per shape) and
timed ones there; each challenger is timed at that batch. Rates are per image: a smaller batch
stands for the run's (at most its rate). Random images, a fresh model of the run's architecture
(nothing downloaded) whose layers check the deadline, forward and backward, so an emulated bf16
step is cut within a layer of the cap; cut before a timed step is done, a challenger is
`capped`. The RNG state, the thread count and cuDNN's benchmark flag are left as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.train.hardware import autocast_dtype, sync
from tui_trainer.train.models import apply_freeze, build_model, set_train_mode
from tui_trainer.train.optimizer import make_sgd
from tui_trainer.train.step_timing import Deadline, PhaseTiming, ramp, time_steps

CAP_S = 3.0  # seconds per phase (train, eval) of one challenger, warm-up included
EVAL_PER_TRAIN = 2.0  # images an epoch evaluates per training image (the train and val splits)
# (warm-up steps, timed steps, the ramp's first batch) at the measured batch; a GPU's steps take
# milliseconds, so it gets more of them. On a CPU one warm-up: oneDNN builds a shape's kernels
# in its first step, and a step at 224 px takes seconds, a third of the probe a step per phase
PLAN = {"cpu": (1, 2, 8), "cuda": (3, 5, 32)}
# seconds the baseline's ramp may climb for, per phase: the probe stays under ~20 s on a CPU
RAMP_S = {"cpu": 6.0, "cuda": 1.5}
# On a CPU a challenger first takes a step on SCOUT_BATCH images, cut once slower than fp32's
# first on the whole batch (at least SCOUT_FLOOR_S): an emulated bf16 layer is cheap to catch there
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
    train_batch: int = 0  # the batch each phase was timed at (0: not timed)
    eval_batch: int = 0

    @property
    def usable(self) -> bool:
        return not self.capped and not self.error and self.epoch_ips is not None

    @property
    def epoch_ips(self) -> float | None:
        """Training images per second of a protocol epoch: train + EVAL_PER_TRAIN evaluated."""
        if not self.train_ips or not self.eval_ips:
            return None
        return 1.0 / (1.0 / self.train_ips + EVAL_PER_TRAIN / self.eval_ips)


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
    eval_batch: int,
    threads: int,
    cap_s: float = CAP_S,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[CandidateRate, ...]:
    """Time each precision on a fresh model of the run's architecture, for train steps of `batch`
    images and evaluation batches of `eval_batch`. The first (fp32) is the baseline: never cut,
    its ramp picks each phase's batch. A challenger's phase is timed at that batch, cut at
    `cap_s`, or later if the baseline took longer there to reach its first timed step (one 1.2x
    faster gets there sooner); on a CPU after a scout step (SCOUT_BATCH). The RNG state, threads
    and cuDNN flag are as they were afterwards."""
    with _isolated(device, threads):
        model = build_model(config.model, config.classes or PROBE_CLASSES, "none")
        model = model.to(device, memory_format=torch.channels_last)
        trained = apply_freeze(model, config.model, config.freeze)
        # lr 0: the same arithmetic as the run's SGD, and weights that stay finite
        opt = make_sgd(trained, config, lr=0.0)
        data = _Inputs(device, config.image_size, config.classes or PROBE_CLASSES)
        timer = _Timer(_Checkpoints(model), data, {"train": batch, "eval": eval_batch}, stop, clock)
        rates: list[CandidateRate] = []
        # None: the baseline's phase (fp32, first); then what it leaves the challengers
        limits: dict[str, ChallengerLimits | None] = {"train": None, "eval": None}
        for precision in precisions:
            phases = _steps(model, opt, data, config, precision)
            rate, timings = _rate(precision, timer, phases, limits)
            if not rates:
                limits = {p: ChallengerLimits.after(timings.get(p), cap_s, device) for p in limits}
            rates.append(rate)
        timer.checks.deadline = None
    return tuple(rates)


class _Inputs:
    """Random inputs of the batch size last asked for (made outside the timed steps)."""

    def __init__(self, device: torch.device, size: int, classes: int) -> None:
        self.device, self.size, self.classes = device, size, classes
        self.made: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def __call__(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.made is None or self.made[0] != n:
            x = torch.randn((n, 3, self.size, self.size), device=self.device)
            y = torch.randint(0, self.classes, (n,), device=self.device)
            self.made = (n, x.contiguous(memory_format=torch.channels_last), y)
        return self.made[1], self.made[2]


@dataclass(frozen=True)
class _Timer:
    """Times the phases of the probe model, its layers checking the deadline."""

    checks: _Checkpoints
    data: _Inputs
    batches: dict[str, int]  # the run's batch per phase
    stop: threading.Event | None
    clock: Callable[[], float]
    measured: dict[str, int] = dataclasses.field(default_factory=dict)  # the batch timed, by phase

    @property
    def opts(self) -> dict[str, Any]:  # for time_steps
        return {"stop": self.stop, "clock": self.clock}

    @property
    def plan(self) -> tuple[int, int, int]:  # PLAN's (warm-up, timed steps, first batch) here
        return PLAN.get(self.data.device.type, PLAN["cpu"])

    def _run(self, step: Callable[[int], None], n: int) -> Callable[[Deadline], None]:
        self.data(n)  # the inputs are made before the step is timed

        def checked(deadline: Deadline) -> None:
            self.checks.deadline = deadline
            step(n)
            sync(self.data.device)

        return checked

    def baseline(self, phase: str, step: Callable[[int], None]) -> tuple[int, PhaseTiming]:
        warmup, steps, start = self.plan
        budget = RAMP_S.get(self.data.device.type, RAMP_S["cpu"])
        plan = {"warmup": warmup, "steps": steps, "start": start, **self.opts}
        plan |= {"batch": self.batches[phase], "budget_s": budget}
        return ramp(lambda n: self._run(step, n), **plan)

    def challenger(
        self, step: Callable[[int], None], limits: ChallengerLimits, batch: int
    ) -> PhaseTiming:
        warmup, steps, _ = self.plan
        once = self.opts
        if limits.scout_s is not None and batch > SCOUT_BATCH:
            scout = self._run(step, SCOUT_BATCH)
            scout = time_steps(scout, warmup=0, steps=1, cap_s=limits.scout_s, **once)
            if scout.capped:  # slower on two images than fp32 on the batch: slower on it
                # its per-image time up to the cut, for the batch: a rough (high) figure
                per_batch = scout.seconds_per_step * batch / SCOUT_BATCH
                return dataclasses.replace(scout, seconds_per_step=per_batch)
        run = self._run(step, batch)
        return time_steps(run, warmup=warmup, steps=steps, cap_s=limits.cap_s, **once)

    def seconds_at_run_batch(self, phase, step, timing: PhaseTiming, limits) -> float:
        """A step's seconds at the run's batch. Timed at a smaller batch B: one more step at B/2
        (after a warm-up) draws the line of a fixed cost (the optimizer, autocast's weight casts,
        kernel launches) and one per image through the two, followed to the run's batch; where
        the two do not give such a line (noise), B's seconds per image."""
        batch, run_batch = self.measured[phase], self.batches[phase]
        flat = timing.seconds_per_step * run_batch / batch
        if batch >= run_batch or batch < 2:
            return flat
        cap = {"cap_s": math.inf, "cut": False} if limits is None else {"cap_s": limits.cap_s}
        # the baseline's ramp (doubling from its first batch) took a step at B/2: kernels built
        warm = 0 if limits is None and batch // 2 >= self.plan[2] else 1
        half = time_steps(self._run(step, batch // 2), warmup=warm, steps=1, **cap, **self.opts)
        if half.capped:
            return flat
        per_image = (timing.seconds_per_step - half.seconds_per_step) / (batch - batch // 2)
        fixed = timing.seconds_per_step - per_image * batch
        return fixed + per_image * run_batch if per_image > 0 and fixed >= 0 else flat


@dataclass(frozen=True)
class ChallengerLimits:
    """A challenger's limits in one phase, from the baseline's timing of it."""

    cap_s: float
    scout_s: float | None  # None: no single-image step first (GPUs)

    @classmethod
    def after(
        cls, baseline: PhaseTiming | None, cap_s: float, device: torch.device
    ) -> ChallengerLimits:
        """Never below the time the baseline took to its first timed step (one 1.2x faster gets
        there sooner); a phase the baseline could not time: the plain cap."""
        if baseline is None:
            return cls(cap_s, None)
        scout = max(SCOUT_FLOOR_S, baseline.first_step_s) if device.type == "cpu" else None
        return cls(max(cap_s, baseline.first_done_s), scout)


def _steps(model, opt, data: _Inputs, config: RunConfig, precision: str):
    """A train step and an evaluation batch of n images in `precision`, as the engine's."""
    kind = data.device.type
    dtype = autocast_dtype(precision)
    scaler = torch.amp.GradScaler(kind, enabled=precision == "fp16")
    criterion = nn.CrossEntropyLoss()

    def train(n: int) -> None:
        x, y = data(n)
        set_train_mode(model, config.model, config.freeze)
        with torch.autocast(kind, dtype=dtype, enabled=dtype is not None):
            logits = model(x)
        loss = criterion(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    @torch.no_grad()
    def evaluate(n: int) -> None:
        x, _ = data(n)
        model.eval()
        with torch.autocast(kind, dtype=dtype, enabled=dtype is not None):
            model(x)

    return {"train": train, "eval": evaluate}


def _rate(precision: str, timer: _Timer, phases, limits):
    """The candidate's rates and its timings by phase (only the phases it got through). The
    baseline (limits None) sets each phase's batch in `timer.measured`."""
    timings: dict[str, PhaseTiming] = {}
    try:
        for phase in ("train", "eval"):
            if limits[phase] is None:
                timer.measured[phase], timings[phase] = timer.baseline(phase, phases[phase])
            else:
                batch = timer.measured.setdefault(phase, timer.batches[phase])
                timings[phase] = timer.challenger(phases[phase], limits[phase], batch)
            if timings[phase].capped:  # too slow: the rest cannot save it
                break
        ips = {p: timer.measured[p] / t.seconds_per_step for p, t in timings.items()}
        for p, t in timings.items():  # at the run's batch, where it was timed smaller
            if not t.capped:
                ips[p] = timer.batches[p] / timer.seconds_at_run_batch(p, phases[p], t, limits[p])
    except RuntimeError as exc:  # e.g. this autocast dtype is not supported on this device
        return CandidateRate(precision, None, None, error=str(exc).splitlines()[0][:200]), {}
    capped = any(t.capped for t in timings.values())
    sizes = {f"{p}_batch": timer.measured[p] for p in timings}
    return CandidateRate(precision, ips.get("train"), ips.get("eval"), capped, **sizes), timings


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
