"""The LR range test on the tiny synthetic set: the schedule, the early stop, the suggestion
rules, the model left as it was, the saved curve kept out of the runs list."""

from __future__ import annotations

import json
import math
import threading

import pytest
import torch

from tests.support.runs import stand_in_imagenet, tiny_config
from tui_trainer.errors import Stopped, UserError
from tui_trainer.runs.store import list_runs
from tui_trainer.train import lr_curve
from tui_trainer.train.lr_find import find_lr
from tui_trainer.train.preparation import prepare


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_lr_grows_geometrically_and_stops_when_the_loss_diverges(tiny_data):
    prep = prepare(tiny_config(), tiny_data)
    before = _weights(prep.model)
    steps: list[lr_curve.LrFindStep] = []
    options = lr_curve.LrFindOptions(start=1e-4, end=1e4, steps=40)
    result = find_lr(prep, options, steps.append)

    assert result.stopped_early and result.steps_run < options.steps
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) == result.steps_run
    ratio = (options.end / options.start) ** (1 / (options.steps - 1))
    assert result.lrs[0] == pytest.approx(options.start)
    for a, b in zip(result.lrs, result.lrs[1:], strict=False):
        assert b / a == pytest.approx(ratio)
    # seeded, this curve ends by the 4x rule (the losses stay finite): the last point kept is
    # the first past 4x the minimum so far, none before it was
    smoothed = result.smoothed
    assert smoothed[-1] > lr_curve.DIVERGE_FACTOR * min(smoothed)
    assert all(
        s <= lr_curve.DIVERGE_FACTOR * min(smoothed[: i + 1]) for i, s in enumerate(smoothed[:-1])
    )
    assert all(math.isfinite(x) for x in result.losses)
    assert min(result.lrs) <= result.suggestion <= max(result.lrs)
    assert result.rule == lr_curve.SuggestRule.STEEPEST
    assert [s.lr for s in steps] == result.lrs
    after = prep.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the prepared model changed"


def test_a_short_epoch_is_cycled_to_the_full_range(tiny_data):
    prep = prepare(tiny_config(batch_size=4), tiny_data)
    batches_per_epoch = math.ceil(len(prep.tensors["train"]) / 4)
    options = lr_curve.LrFindOptions(start=1e-6, end=1e-5, steps=batches_per_epoch * 2 + 1)
    result = find_lr(prep, options)
    assert not result.stopped_early
    assert result.steps_run == options.steps
    assert result.lrs[-1] == pytest.approx(options.end)
    assert result.config["batch_size"] == 4


def test_freeze_conv_trains_the_head_on_frozen_features_and_leaves_the_model(tiny_data):
    stand_in_imagenet("alexnet")
    cfg = tiny_config(weights="imagenet", freeze="conv")
    prep = prepare(cfg, tiny_data)
    assert "frozen_features" in prep.fast_paths
    before = _weights(prep.model)
    logs: list[str] = []
    result = find_lr(
        prep,
        lr_curve.LrFindOptions(1e-4, 1.0, 8),
        lambda e: logs.append(getattr(e, "message", "")),
    )
    assert result.steps_run >= 1
    assert any("computing frozen features of the train split" in m for m in logs)
    assert not any("val split" in m for m in logs)
    after = prep.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in prep.model.parameters()), "the freeze reached the model"


def test_a_set_stop_event_raises_stopped(tiny_data):
    prep = prepare(tiny_config(), tiny_data)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        find_lr(prep, lr_curve.LrFindOptions(steps=10), stop=stop)


def _ema_after_a_jump(k: int, high: float, n: int) -> float:
    """The bias-corrected EMA at step n of k losses of 1.0 then losses of `high`, in closed
    form: (high (1 - b^(n-k)) + b^(n-k) (1 - b^k)) / (1 - b^n)."""
    b = lr_curve.SMOOTHING
    return (high * (1 - b ** (n - k)) + b ** (n - k) * (1 - b**k)) / (1 - b**n)


def _first_step_past(factor: float, k: int, high: float) -> int:
    return next(n for n in range(k + 1, 10_000) if _ema_after_a_jump(k, high, n) > factor)


def test_the_curve_stops_at_the_first_smoothed_loss_past_4x_its_minimum():
    # 20 steps at 1.0 (the minimum, smoothed 1.0 exactly), then a finite jump to 10: the EMA
    # climbs a step at a time and passes 4x the minimum at a step the closed form gives
    k, high = 20, 10.0
    expected = _first_step_past(4.0, k, high)  # the documented rule, not the module's constant
    # a factor of 3 or 5 would stop at another step: the test tells the factor apart
    assert _first_step_past(3.0, k, high) < expected < _first_step_past(5.0, k, high)
    curve = lr_curve.Curve()
    for step in range(1, 200):  # as find_lr: record, then ask whether to stop
        assert curve.add(1e-3 * step, 1.0 if step <= k else high)
        if curve.diverged():
            break
    assert curve.stopped_early and len(curve.lrs) == expected  # the point past 4x is kept
    assert curve.smoothed[-1] == pytest.approx(_ema_after_a_jump(k, high, expected))
    assert min(curve.smoothed) == pytest.approx(1.0)
    assert curve.smoothed[-2] <= 4.0 < curve.smoothed[-1]


def test_a_non_finite_loss_stops_the_curve_without_its_point():
    curve = lr_curve.Curve()
    assert curve.add(1e-3, 2.0) and not curve.diverged()
    assert not curve.add(1e-2, math.nan)
    assert curve.stopped_early and curve.losses == [2.0]


def _curve(n: int = 60) -> tuple[list[float], list[float]]:
    """Flat at 2.0, a descent between points 20 and 40 steepest at 30, then a rise."""
    lrs = [1e-5 * 10 ** (i / 10) for i in range(n)]
    losses = []
    for i in range(n):
        if i < 20:
            losses.append(2.0)
        elif i < 40:
            losses.append(2.0 - 1.5 * (1 - math.cos(math.pi * (i - 20) / 20)) / 2)
        else:
            losses.append(0.5 + 0.1 * (i - 40))
    return lrs, losses


def test_the_rules_read_the_curve_as_fastai_does():
    lrs, losses = _curve()
    # the cosine's slope is steepest around point 30 (29->30 and 30->31 tie up to rounding)
    assert lr_curve.suggest(lrs, losses, lr_curve.SuggestRule.STEEPEST) in (lrs[29], lrs[30])
    # the bottom of the curve: 0.5 at point 40
    assert lr_curve.suggest(lrs, losses, lr_curve.SuggestRule.MINIMUM) == pytest.approx(
        lrs[40] / 10
    )
    valley = lr_curve.suggest(lrs, losses, lr_curve.SuggestRule.VALLEY)
    assert lrs[20] < valley < lrs[39]  # inside the descent, before its bottom


def test_steepest_skips_the_first_tenth_and_the_last_points():
    lrs = [10.0**-i for i in range(30, 0, -1)]
    losses = [5.0, 1.0] + [1.0 - 0.01 * i for i in range(25)] + [0.0, -5.0, -9.0]
    # the drops at the very start and the very end are left out
    index = lrs.index(lr_curve.suggest(lrs, losses, lr_curve.SuggestRule.STEEPEST))
    assert 3 <= index < 25


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(start=1.0, end=1.0), "--start 1 must be below --end 1"),
        (dict(start=0.1, end=0.01), "--start 0.1 must be below --end 0.01"),
        (dict(steps=0), "--steps 0 must be >= 5"),
        (dict(start=0.0), "--start 0 must be a finite number > 0"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(UserError, match=message):
        lr_curve.LrFindOptions(**options)


def test_the_saved_curve_is_json_under_lr_find_and_not_a_run(tiny_data, tmp_path):
    prep = prepare(tiny_config(), tiny_data)
    result = find_lr(prep, lr_curve.LrFindOptions(1e-5, 1e-3, 6))
    runs = tmp_path / "runs"
    first = lr_curve.save_result(result, runs, "scratch")
    second = lr_curve.save_result(result, runs, "scratch")
    assert first.parent == second.parent == runs / ".lr-find" and first != second
    data = json.loads(first.read_text())
    assert data["lrs"] == result.lrs and data["suggestion"] == result.suggestion
    assert data["rule"] == "steepest" and data["steps_run"] == 6
    assert not (runs / ".lr-find" / "config.json").exists()
    assert list_runs(runs) == []


def test_format_lr():
    assert lr_curve.format_lr(0.0123) == "0.0123"
    assert lr_curve.format_lr(0.000123) == "1.23e-04"
    assert lr_curve.format_lr(0.05) == "0.05"
    assert float(lr_curve.format_lr(0.0403701)) == pytest.approx(0.0404)


def test_the_plot_window_ends_where_the_loss_passes_twice_its_start():
    lrs = [1e-5 * 2**i for i in range(12)]
    smoothed = [2.0, 1.9, 1.7, 1.4, 1.0, 0.8, 0.9, 1.5, 3.9, 4.1, 80.0, 122337.6]
    shown, losses, cut = lr_curve.plot_window(lrs, smoothed)
    assert cut and losses == smoothed[:9] and shown == lrs[:9]  # 4.1 is the first past 4.0
    assert lr_curve.plot_window(lrs[:8], smoothed[:8]) == (lrs[:8], smoothed[:8], False)


def test_the_cli_plot_of_a_diverged_curve_scales_to_the_useful_part():
    from tui_trainer.cli.lr_find_command import plot_text

    lrs = [1e-5 * 1.5**i for i in range(30)]
    smoothed = [2.3 - 0.05 * i for i in range(25)] + [1.5, 2.5, 5.0, 900.0, 122337.6]
    suggestion = lr_curve.suggest(lrs, smoothed, lr_curve.SuggestRule.STEEPEST)
    result = lr_curve.LrFindResult(
        lrs, smoothed, smoothed, suggestion, lr_curve.SuggestRule.STEEPEST, True, 30, {}
    )
    text = plot_text(result, width=80)
    assert "122337" not in text and "900" not in text
    ticks = [float(line.split("┤")[0]) for line in text.splitlines() if "┤" in line]
    assert max(ticks) <= 2 * 2.3 and min(ticks) <= 1.2
    assert "●" in text  # the suggestion, on the curve
