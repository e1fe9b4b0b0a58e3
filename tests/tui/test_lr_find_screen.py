"""The LR key on the Launch form: the range test runs in a worker for the form's config, its
curve shows, and `u` puts the suggestion into the LR field. Snapshots of the curve screen."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path

from textual.widgets import Input

from tests.support.runs import tiny_config
from tests.support.tui import ScriptedEngine, drive, wait_for
from tui_trainer.config import load_preset
from tui_trainer.train import lr_curve
from tui_trainer.tui.app import make_app
from tui_trainer.tui.screens.lr_find import LrFindScreen
from tui_trainer.tui.widgets.config_form import ConfigForm
from tui_trainer.tui.widgets.lr_plot import LrCurvePlot

SMALL = (80, 24)
LARGE = (120, 36)


def _tiny_scratch():
    """The scratch preset at the tiny set's size, on the CPU in fp32 (no precision probe)."""
    preset = load_preset("scratch")
    config = tiny_config(model="alexnet", lr=preset.config.lr, last_batch="drop")
    return dataclasses.replace(preset, config=config)


def test_the_lr_key_runs_the_range_test_and_fills_the_lr_field(tiny_data, tmp_path, monkeypatch):
    # 20 steps, not the default 100: the same path end to end, in a fifth of the time
    monkeypatch.setattr(
        lr_curve, "LrFindOptions", functools.partial(lr_curve.LrFindOptions, steps=20)
    )
    runs = tmp_path / "runs"
    app = make_app(
        data_dir=tiny_data, runs_dir=runs, engine=ScriptedEngine(), presets=[_tiny_scratch()]
    )

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        lr_field = app.screen.query_one("#lr", Input)
        assert lr_field.value == "0.05"
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen), what="the screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None, timeout=300, what="the test")
        assert screen.has_class("-done")
        assert screen.result.steps_run <= 20
        suggestion = screen.result.suggestion
        assert min(screen.result.lrs) <= suggestion <= max(screen.result.lrs)
        await pilot.press("u")
        await wait_for(pilot, lambda: not isinstance(app.screen, LrFindScreen), what="closing")
        shown = app.screen.query_one("#lr", Input).value
        assert shown == lr_curve.format_lr(suggestion) and shown != "0.05"
        form = app.screen.query_one(ConfigForm)
        result = form.check()
        assert result.config is not None and math.isclose(result.config.lr, float(shown))
        assert result.overrides["lr"] == shown  # Start would run with it
        saved = list((runs / ".lr-find").glob("scratch-*.json"))
        assert len(saved) == 1
        assert json.loads(saved[0].read_text())["suggestion"] == suggestion

    drive(app, scenario, size=LARGE)


def test_escape_closes_without_touching_the_lr_field(tiny_data, tmp_path):
    app = make_app(
        data_dir=tiny_data,
        runs_dir=tmp_path / "runs",
        engine=ScriptedEngine(),
        presets=[_tiny_scratch()],
    )

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen), what="the screen")
        screen = app.screen
        await pilot.press("u")  # nothing to use yet: the screen stays
        assert app.screen is screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LrFindScreen), what="closing")
        assert screen.stop.is_set()
        assert app.screen.query_one("#lr", Input).value == "0.05"

    drive(app, scenario, size=SMALL)


def _fixed_result() -> lr_curve.LrFindResult:
    """A curve with the shape of a range test: flat, a descent, then the blow-up."""
    options = lr_curve.LrFindOptions(1e-6, 1.0, 60)
    lrs = [options.lr_at(i) for i in range(56)]
    smoothed = [
        1.6 - 0.5 * (1 - math.cos(math.pi * min(max(i - 25, 0), 20) / 20)) / 2 for i in range(50)
    ] + [1.1 + 0.8 * k for k in range(6)]
    suggestion = lr_curve.suggest(lrs, smoothed, lr_curve.SuggestRule.STEEPEST)
    return lr_curve.LrFindResult(
        lrs, smoothed, smoothed, suggestion, lr_curve.SuggestRule.STEEPEST, True, 56, {}, options
    )


def _curve_app(tmp_path):
    preset = load_preset("scratch")
    return make_app(
        data_dir=Path("/nonexistent/caltech101"),
        runs_dir=tmp_path / "runs",
        engine=ScriptedEngine(),
    ), preset


def _snapshot_of_the_curve(snap_compare, tmp_path, size):
    app, preset = _curve_app(tmp_path)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.clear_notifications()
        screen = LrFindScreen(
            preset.config, "scratch", tmp_path, tmp_path / "runs", result=_fixed_result()
        )
        await app.push_screen(screen)
        await pilot.pause()

    return snap_compare(app, terminal_size=size, run_before=run_before)


def test_curve_screen_small(snap_compare, tmp_path):
    assert _snapshot_of_the_curve(snap_compare, tmp_path, SMALL)


def test_curve_screen_large(snap_compare, tmp_path):
    assert _snapshot_of_the_curve(snap_compare, tmp_path, LARGE)


def test_the_lr_key_is_refused_while_a_run_trains_in_this_console(tiny_data, tmp_path):
    # the range test would share the process with the run (its reseeding, its thread count)
    engine = ScriptedEngine(hold_after=1)
    app = make_app(
        data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine, presets=[_tiny_scratch()]
    )

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        await pilot.press("ctrl+s", "enter")  # Start, in this console
        await wait_for(pilot, lambda: engine.started.is_set(), what="the run")
        await pilot.press("1")  # back to the Launch form
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert not isinstance(app.screen, LrFindScreen)
        assert app.current_job is not None
        app.stop_current()
        await wait_for(pilot, lambda: app.current_job is None, what="the stop")
        await pilot.press("ctrl+l")  # idle again: the range test may run
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen), what="the screen")
        await pilot.press("escape")

    drive(app, scenario, size=LARGE)


def _diverged_result() -> lr_curve.LrFindResult:
    """`_fixed_result` whose last step blew up, as a real range test's can (one step's loss
    in the millions lifts the smoothed loss to 1e5)."""
    fixed = _fixed_result()
    lrs = [*fixed.lrs, fixed.options.lr_at(len(fixed.lrs))]
    smoothed = [*fixed.smoothed, 122337.6]
    return dataclasses.replace(fixed, lrs=lrs, losses=smoothed, smoothed=smoothed, steps_run=57)


def _y_ticks(text: str) -> list[float]:
    """The numbers left of the plot's y axis."""
    ticks = []
    for line in text.splitlines():
        head = line.split("┤")[0].strip() if "┤" in line else ""
        if head:
            ticks.append(float(head))
    return ticks


def test_the_curve_leaves_out_the_diverged_tail_and_marks_the_suggestion(tmp_path):
    app, preset = _curve_app(tmp_path)
    result = _diverged_result()

    async def scenario(pilot):
        screen = LrFindScreen(preset.config, "scratch", tmp_path, tmp_path / "runs", result=result)
        await app.push_screen(screen)
        await pilot.pause()
        text = screen.query_one(LrCurvePlot).render().plain
        ticks = _y_ticks(text)
        assert ticks and max(ticks) <= lr_curve.PLOT_CLIP * result.smoothed[0]
        assert min(ticks) <= min(result.smoothed) + 0.1  # the useful part fills the height
        assert "122337" not in text and "cut at 2x" in text
        assert "●" in text  # the suggestion, on the curve

    drive(app, scenario, size=LARGE)
