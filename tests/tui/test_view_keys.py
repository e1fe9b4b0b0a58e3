"""Switching views from any focus: 1-5 where no text field has focus (in a field they are
text), F1-F5 from anywhere, and the key bar showing whichever works at the moment."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from tests.support.tui import ScriptedEngine, drive, wait_for
from tui_trainer.config import load_preset
from tui_trainer.train import lr_curve
from tui_trainer.tui.app import make_app
from tui_trainer.tui.screens.lr_find import LrFindScreen
from tui_trainer.tui.widgets.key_bar import KeyBar
from tui_trainer.tui.widgets.preset_picker import PresetPicker

MISSING_DATA = Path("/nonexistent/caltech101")  # no data check to wait on a real folder


def _app(tmp_path):
    return make_app(data_dir=MISSING_DATA, runs_dir=tmp_path / "runs", engine=ScriptedEngine())


def a_curve() -> lr_curve.LrFindResult:
    """A measured range test, for the screen to show without running one."""
    lrs = [1e-4 * 2**i for i in range(12)]
    smoothed = [2.3, 2.3, 2.2, 2.0, 1.7, 1.4, 1.2, 1.1, 1.3, 2.0, 4.0, 9.0]
    suggestion = lr_curve.suggest(lrs, smoothed, lr_curve.SuggestRule.STEEPEST)
    rule = lr_curve.SuggestRule.STEEPEST
    return lr_curve.LrFindResult(lrs, smoothed, smoothed, suggestion, rule, True, 12, {})


def bar_text(app) -> str:
    return str(app.screen.query_one(KeyBar).render())


def test_f_keys_switch_views_from_a_text_field_that_keeps_its_digits(tmp_path):
    app = _app(tmp_path)

    async def scenario(pilot):
        resize = app.screen.query_one("#resize", Input)
        before = resize.value
        resize.focus()
        await pilot.pause()
        shown = bar_text(app)
        assert "F1 Launch" in shown and "F3 Runs" in shown and "F5 Preview" in shown
        assert " 3 Runs" not in shown
        await pilot.press("3")  # a digit in a field is text
        assert resize.value.endswith("3") and app.main.current == "launch"
        resize.value = before
        await pilot.press("f3")
        assert app.main.current == "runs" and resize.value == before
        assert " 3 Runs" in bar_text(app) and "F3" not in bar_text(app)  # no field focused
        await pilot.press("1")
        assert app.main.current == "launch"

    drive(app, scenario, size=(160, 30))


def test_f_keys_leave_the_sweep_override_field(tmp_path):
    app = _app(tmp_path)

    async def scenario(pilot):
        app.main.view("launch").pick("sweep:scratch-lr-sweep")
        await pilot.pause()
        field = app.screen.query_one("#sweep-set", Input)
        field.focus()
        field.value = "batch_size=32"
        await pilot.press("f2")
        assert app.main.current == "watch" and field.value == "batch_size=32"

    drive(app, scenario)


def test_the_bar_folds_f_keys_into_one_item_when_narrow(tmp_path):
    app = _app(tmp_path)

    async def scenario(pilot):
        app.screen.query_one("#lr", Input).focus()
        await pilot.pause()
        assert "F1-F5 Views" in bar_text(app)
        app.screen.query_one(PresetPicker).focus()
        await pilot.pause()
        assert "1-5 Views" in bar_text(app) and "F1" not in bar_text(app)

    drive(app, scenario, size=(60, 24))


def test_after_the_lr_finder_closes_the_number_keys_switch_views(tmp_path):
    app = _app(tmp_path)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        view = app.main.view("launch")
        app.screen.query_one("#resize", Input).focus()  # where ctrl+l was pressed
        screen = LrFindScreen(
            load_preset("scratch").config,
            "scratch",
            MISSING_DATA,
            tmp_path / "runs",
            result=a_curve(),
        )
        await app.push_screen(screen, view._lr_found)  # the callback ctrl+l gives it
        await pilot.pause()
        await pilot.press("u")
        await wait_for(pilot, lambda: not isinstance(app.screen, LrFindScreen), what="closing")
        await pilot.pause()
        assert not isinstance(app.focused, Input)
        resize = app.screen.query_one("#resize", Input).value
        await pilot.press("3")
        assert app.main.current == "runs"
        assert app.screen.query_one("#resize", Input).value == resize

    drive(app, scenario)
