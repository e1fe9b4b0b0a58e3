"""The learning-rate range test (Leslie Smith's, as fastai's `lr_find` and Lightning's
`Tuner.lr_find` run it), on the engine's own batches: `find_lr(prepared, options, ...)`.

What it trains: a deep copy of the prepared model, moved, frozen and optimised exactly as a run
builds it (`engine.build_loop`: channels_last, `apply_freeze`'s parameter groups, SGD with the
config's momentum and weight decay, the fp16 grad scaler, autocast, the augmentation in
`BatchContext.to_input`). The prepared model's weights are never touched, nor any run folder.

freeze=conv without augmentation (the `frozen_features` fast path) trains the head on the train
split's cached frozen features, as a run does: the extractor is in eval mode and gets no
gradients, so the head sees the same inputs either way, and the test costs a head's steps instead
of AlexNet's forward passes. Only the train split's features are computed.

The schedule: lr_i = start * (end / start) ** (i / (steps - 1)), i = 0 .. steps - 1, one batch
each, cycling through epochs of the train split's shuffled order (`train_order`, epochs 1, 2, ...)
when an epoch has fewer than `steps` batches. The loss is smoothed with fastai's EMA
(beta 0.98, bias corrected); the test stops early once the smoothed loss exceeds 4x its minimum
(that point is kept: it shows the divergence) or the loss is not finite (that point is not).

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

import copy
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tui_trainer.data.batches import TensorSplit, iterate_batches, seed_everything, train_order
from tui_trainer.errors import Stopped, UserError
from tui_trainer.events import Log
from tui_trainer.files import write_json_atomic
from tui_trainer.train import fast_paths, frozen_features
from tui_trainer.train.context import make_context
from tui_trainer.train.models import apply_freeze, set_train_mode
from tui_trainer.train.preparation import Prepared

LR_FIND_DIR = ".lr-find"  # under the runs folder; never holds a config.json, so never a run
SMOOTHING = 0.98  # fastai's beta
DIVERGE_FACTOR = 4.0  # stop once the smoothed loss exceeds this times its minimum
MIN_STEPS = 5
SKIP_END = 5  # points left out at the end (fastai's lr_find)


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


def find_lr(
    prep: Prepared,
    options: LrFindOptions,
    on_event: Callable[[object], None] | None = None,
    stop: threading.Event | None = None,
) -> LrFindResult:
    """Run the range test on a copy of `prep.model`; `LrFindStep` (and `Log`) events go to
    `on_event`; raises `Stopped` when `stop` is set."""
    say = on_event or (lambda event: None)
    stop = stop or threading.Event()
    cfg = prep.config
    torch.set_num_threads(prep.topology.threads_per_rank(cfg.threads))
    seed_everything(cfg.seed)  # dropout draws follow the seed, as a run's
    model = copy.deepcopy(prep.model).to(prep.device, memory_format=torch.channels_last)
    params = apply_freeze(model, cfg.model, cfg.freeze)
    optimizer = torch.optim.SGD(
        params, lr=options.start, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scaler = torch.amp.GradScaler(prep.device.type, enabled=prep.precision == "fp16")
    ctx = make_context(prep)
    train = fast_paths.place({"train": prep.tensors["train"]}, prep.device, prep.fast_paths)
    step_model: nn.Module = model
    if "frozen_features" in prep.fast_paths:
        step_model, train = frozen_features.cache_frozen_features(
            model, cfg, train, ctx.to_input, ctx.autocast, lambda m: say(Log("", m)), _checker(stop)
        )
    set_train_mode(step_model, cfg.model, cfg.freeze)
    criterion = nn.CrossEntropyLoss()
    curve = _Curve()
    batches = _cycle(train["train"], cfg, ctx.pin)
    for i in range(options.steps):
        if stop.is_set():
            raise Stopped
        lr = options.lr_at(i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = next(batches)
        with ctx.autocast():
            logits = step_model(ctx.to_input(images, ctx.augment))
        loss = criterion(logits.float(), labels.to(ctx.device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if not curve.add(lr, loss.item()):
            break
        say(LrFindStep(i + 1, options.steps, lr, curve.losses[-1], curve.smoothed[-1]))
        if curve.diverged():
            break
    return curve.result(options, cfg.to_dict())


def _checker(stop: threading.Event) -> Callable[[], None]:
    def check() -> None:
        if stop.is_set():
            raise Stopped

    return check


def _cycle(split: TensorSplit, cfg, pin: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The train split's batches as a run's epochs give them, epoch after epoch, endlessly."""
    epoch = 1
    while True:
        yield from iterate_batches(
            split, cfg.batch_size, train_order(len(split), cfg, epoch), pin=pin
        )
        epoch += 1


@dataclass
class _Curve:
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


def plot_curve(plt: Any, lrs: list[float], smoothed: list[float], suggestion: float | None) -> None:
    """The smoothed loss against LR on a log x axis, the suggestion as a vertical line, drawn
    into a plotext figure (the CLI's text, the TUI's widget)."""
    title = "LR range test"
    if suggestion is not None:
        title += f": suggested lr {format_lr(suggestion)}"
    plt.title(title)
    plt.xscale("log")
    plt.xlabel("learning rate (log)")
    if lrs:
        plt.plot(lrs, smoothed, marker="braille")
    if suggestion is not None:
        plt.vline(suggestion)


def format_lr(lr: float) -> str:
    """0.0123, 0.5, 1.23e-04: three significant digits, exponent form below 1e-3."""
    return f"{lr:.2e}" if lr < 1e-3 else f"{lr:.3g}"
