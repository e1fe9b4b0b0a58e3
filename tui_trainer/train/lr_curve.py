"""The LR range test's curve without torch: its options, the smoothed loss as it grows
(`Curve`), the suggestion rules, the typed result, its JSON file under `<runs dir>/.lr-find/`
and its plotext figure. train/lr_find.py runs the test.

The loss is smoothed with fastai's EMA (beta 0.98, bias corrected); the test stops early once the
smoothed loss exceeds 4x its minimum (that point is kept: it shows the divergence) or the loss is
not finite (that point is not).

The suggestion, with the rule named in the result (`SuggestRule`, `--rule`):
- `steepest` (the default): the steepest descent of the smoothed loss against log LR, between
  consecutive points (fastai's `steep`, Lightning's default rule): where a step up in LR buys
  the most loss. On the Caltech-101 quick setting it gives 0.0404 (README, lr-find).
- `valley`: fastai's current default. The longest run of points whose smoothed loss keeps
  falling (its longest decreasing subsequence), then 1/3 + 1/6 of the way into it. A
  from-scratch AlexNet's loss creeps down over decades of LR, so that run starts early and the
  rule lands low: 0.0038 on the same curve.
- `minimum`: a tenth of the LR at the smoothed loss's minimum (fastai's `minimum`).
Like fastai, the first tenth and the last 5 points are left out (the EMA's warm-up, and the
divergence), when that leaves points to choose from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from tui_trainer.errors import UserError
from tui_trainer.files import write_json_atomic

LR_FIND_DIR = ".lr-find"  # under the runs folder; never holds a config.json, so never a run
SMOOTHING = 0.98  # fastai's beta
DIVERGE_FACTOR = 4.0  # stop once the smoothed loss exceeds this times its minimum
MIN_STEPS = 5
MAX_STEPS = 10_000  # fastai and Lightning take 100; more is a typo that trains for days
SKIP_END = 5  # points left out at the end (fastai's lr_find)
PLOT_CLIP = 2.0  # plots stop where the smoothed loss passes this times its starting value


class SuggestRule(StrEnum):
    VALLEY = "valley"
    STEEPEST = "steepest"
    MINIMUM = "minimum"


@dataclass(frozen=True)
class LrFindOptions:
    start: float = 1e-6
    end: float = 1.0
    steps: int = 100
    rule: SuggestRule = SuggestRule.STEEPEST

    def __post_init__(self) -> None:
        """Bad options raise UserError, one line, before anything is decoded or written."""
        if not (math.isfinite(self.start) and self.start > 0):
            raise UserError(f"--start {self.start:g} must be a finite number > 0: e.g. 1e-6")
        if not math.isfinite(self.end) or self.start >= self.end:
            raise UserError(
                f"--start {self.start:g} must be below --end {self.end:g}: e.g. --start 1e-6 "
                "--end 1"
            )
        if self.steps < MIN_STEPS:
            raise UserError(f"--steps {self.steps} must be >= {MIN_STEPS}: e.g. --steps 100")
        if self.steps > MAX_STEPS:
            raise UserError(f"--steps {self.steps} must be <= {MAX_STEPS}: e.g. --steps 100")

    def lr_at(self, i: int) -> float:
        return self.start * (self.end / self.start) ** (i / (self.steps - 1))


@dataclass(frozen=True)
class LrFindStep:
    """One step of the range test, for the listener (the CLI's progress, the TUI's)."""

    step: int  # 1-based
    steps: int
    lr: float
    loss: float
    smoothed: float


@dataclass(frozen=True)
class LrFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    rule: SuggestRule
    stopped_early: bool  # the smoothed loss passed 4x its minimum, or the loss went non-finite
    steps_run: int
    config: dict[str, Any]  # the run config the test ran on (RunConfig.to_dict)
    options: LrFindOptions = field(default_factory=LrFindOptions)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rule"] = str(self.rule)
        data["options"]["rule"] = str(self.options.rule)
        return data


@dataclass
class Curve:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    average: float = 0.0
    stopped_early: bool = False

    def add(self, lr: float, loss: float) -> bool:
        """Record a step; False (not recorded, stopped early) when the loss is not finite."""
        if not math.isfinite(loss):
            self.stopped_early = True
            return False
        self.average = SMOOTHING * self.average + (1 - SMOOTHING) * loss
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(self.average / (1 - SMOOTHING ** len(self.losses)))
        return True

    def diverged(self) -> bool:
        if self.smoothed[-1] > DIVERGE_FACTOR * min(self.smoothed):
            self.stopped_early = True
        return self.stopped_early

    def result(self, options: LrFindOptions, config: dict[str, Any]) -> LrFindResult:
        if not self.lrs:
            raise UserError(
                f"the loss was not finite at the first step (lr {options.start:g}): lower --start"
            )
        lr = suggest(self.lrs, self.smoothed, options.rule)
        return LrFindResult(
            self.lrs,
            self.losses,
            self.smoothed,
            lr,
            options.rule,
            self.stopped_early,
            len(self.lrs),
            config,
            options,
        )


def suggest(lrs: list[float], smoothed: list[float], rule: SuggestRule) -> float:
    """The suggested LR of a curve by `rule`; always one of `lrs`."""
    lrs_kept, losses = _trimmed(lrs, smoothed)
    if rule == SuggestRule.MINIMUM:
        return lrs_kept[losses.index(min(losses))] / 10
    if rule == SuggestRule.STEEPEST:
        return lrs_kept[_steepest(lrs_kept, losses)]
    return lrs_kept[_valley(losses)]


def _trimmed(lrs: list[float], losses: list[float]) -> tuple[list[float], list[float]]:
    """Without the first tenth and the last SKIP_END points, as fastai, when 3 or more remain."""
    start, end = len(lrs) // 10, len(lrs) - SKIP_END
    if end - start >= 3:
        return lrs[start:end], losses[start:end]
    return lrs, losses


def _steepest(lrs: list[float], losses: list[float]) -> int:
    """Index of the most negative slope d(loss)/d(log lr) between consecutive points."""
    if len(lrs) < 2:
        return 0
    slopes = [
        (losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
        for i in range(len(lrs) - 1)
    ]
    return slopes.index(min(slopes))


def _valley(losses: list[float]) -> int:
    """fastai's `valley`: the longest decreasing subsequence, then 1/3 + 1/6 of its way in."""
    n = len(losses)
    run = [1] * n
    max_start, max_end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
            if run[max_end] < run[i]:
                max_end, max_start = i, i - run[i]
    sections = (max_end - max_start) / 3
    return min(max_start + int(sections) + int(sections / 2), n - 1)


def save_result(result: LrFindResult, runs_dir: Path, preset: str, when: datetime | None = None):
    """`<runs_dir>/.lr-find/<preset>-<UTC stamp>.json`, written atomically; its path. The
    folder holds only these files, never a config.json: `list_runs` does not list it."""
    folder = Path(runs_dir) / LR_FIND_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in preset).strip("-.")
    base = f"{safe or 'preset'}-{stamp}"
    path = folder / f"{base}.json"
    n = 2
    while path.exists():
        path, n = folder / f"{base}-{n}.json", n + 1
    write_json_atomic(path, result.to_json())
    return path


def plot_window(lrs: list[float], smoothed: list[float]) -> tuple[list[float], list[float], bool]:
    """The part of the curve a plot shows, and whether a tail was cut: the points up to where
    the smoothed loss first passes PLOT_CLIP times its starting value. The diverged tail runs to
    thousands of times the loss, which would flatten the useful part into the bottom row (fastai
    leaves it out of its plot too)."""
    if not smoothed or not smoothed[0] > 0:
        return lrs, smoothed, False
    cap = PLOT_CLIP * smoothed[0]
    for i, loss in enumerate(smoothed):
        if loss > cap and i >= MIN_STEPS:
            return lrs[:i], smoothed[:i], True
    return lrs, smoothed, False


def plot_curve(plt: Any, lrs: list[float], smoothed: list[float], suggestion: float | None) -> None:
    """The smoothed loss against LR on a log x axis (`plot_window`'s part), the suggestion as a
    vertical line and a point on the curve, drawn into a plotext figure (the CLI's text, the
    TUI's widget)."""
    title = "LR range test"
    if suggestion is not None:
        title += f": suggested lr {format_lr(suggestion)}"
    shown, losses, cut = plot_window(lrs, smoothed)
    if cut:
        title += f" (loss cut at {PLOT_CLIP:g}x its start)"
    plt.title(title)
    plt.xscale("log")
    plt.xlabel("learning rate (log)")
    if shown:
        plt.plot(shown, losses, marker="braille")
    if suggestion is not None:
        plt.vline(suggestion, "red")
        if suggestion in shown:  # one of the curve's points (`minimum`'s is a tenth of one)
            plt.scatter([suggestion], [losses[shown.index(suggestion)]], marker="●", color="red")


def format_lr(lr: float) -> str:
    """0.0123, 0.5, 1.23e-04: three significant digits, exponent form below 1e-3."""
    return f"{lr:.2e}" if lr < 1e-3 else f"{lr:.3g}"
