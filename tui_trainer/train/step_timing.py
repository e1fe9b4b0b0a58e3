"""Timing steps for the precision probe: a phase of warm-up and timed steps within a time cap
(`time_steps`), and the baseline's ramp of doubling batches within a time budget (`ramp`)."""

from __future__ import annotations

import dataclasses
import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tui_trainer.errors import Stopped


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


def ramp(  # noqa: PLR0913 - keyword-only, each names one part of the request
    step_at: Callable[[int], Callable[[Deadline], None]],
    *,
    batch: int,
    start: int,
    budget_s: float,
    warmup: int,
    steps: int,
    clock: Callable[[], float] = time.perf_counter,
    stop: threading.Event | None = None,
) -> tuple[int, PhaseTiming]:
    """The baseline's phase, never cut: a warm-up step (one-time set-up), then a step at each of
    `start`, 2x, 4x... up to `batch` while the next (projected from the last two) ends within
    `budget_s`; then `warmup` - 1 more warm-up and `steps` timed steps at the last batch, whose
    own first-step and first-done times the timing holds (a challenger's limits there)."""
    t0, b = clock(), min(batch, start)
    once = {"warmup": 0, "steps": 1, "cap_s": math.inf, "cut": False, "clock": clock, "stop": stop}
    time_steps(step_at(b), **once)
    seen: list[tuple[int, float]] = []
    while True:
        first = time_steps(step_at(b), **once)
        seen.append((b, first.seconds_per_step))
        after = min(batch, 2 * b)
        if b == batch or clock() - t0 + _projected(seen, after) > budget_s:
            break
        b = after
    rest = time_steps(
        step_at(b),
        warmup=max(warmup - 1, 0),
        steps=steps,
        cap_s=math.inf,
        cut=False,
        clock=clock,
        stop=stop,
    )
    return b, dataclasses.replace(
        rest,
        first_step_s=first.seconds_per_step,
        first_done_s=first.seconds_per_step + rest.first_done_s,
    )


def _projected(seen: list[tuple[int, float]], batch: int) -> float:
    """A step's seconds at `batch`, on the line through the last two (batch, seconds) seen (a
    step costs a fixed part, the optimizer and weight casts, and a part per image), at least
    the last one's; from one point, its seconds per image."""
    b, s = seen[-1]
    if len(seen) < 2:
        return s * batch / b
    b0, s0 = seen[-2]
    return max(s, s + (s - s0) * (batch - b) / (b - b0))
