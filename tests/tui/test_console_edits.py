"""The Launch form's edits belong to their preset until they are reset: moving through the
preset list (or to a sweep) and back shows them again, the list marks the edited preset, and
ctrl+r alone puts the preset's own values back."""

from __future__ import annotations

from textual.widgets import Input, Static

from tests.support.tui import ScriptedEngine, drive, wait_for
from tui_trainer.tui.app import make_app
from tui_trainer.tui.widgets.config_form import ConfigForm
from tui_trainer.tui.widgets.preset_picker import PresetPicker


def field(app, key: str) -> str:
    return str(app.screen.query_one(f"#{key}").value)


def prompt_of(picker: PresetPicker, option_id: str) -> str:
    return str(picker.get_option(option_id).prompt)


async def type_into(pilot, key: str, text: str) -> None:
    widget = pilot.app.screen.query_one(f"#{key}", Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text)
    await pilot.pause()


def test_moving_through_the_presets_keeps_each_ones_edits(tiny_data, tmp_path):
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=ScriptedEngine())

    async def scenario(pilot):
        picker = app.screen.query_one(PresetPicker)
        await type_into(pilot, "epochs", "3")
        await pilot.press("shift+tab", "shift+tab")  # back to the list, as a person would
        assert app.focused is picker
        await pilot.press("down")  # the next preset: its own values
        assert picker.current.name != "scratch" and field(app, "epochs") != "3"
        await pilot.press("up")
        assert picker.current.name == "scratch"
        assert field(app, "epochs") == "3"  # the edit is still there
        assert prompt_of(picker, "scratch").rstrip().endswith("*")
        hint = str(app.screen.query_one("#start-hint", Static).render())
        assert "edited: epochs=3" in hint and "ctrl+r" in hint

        # the LR range test's suggestion is an edit too, kept across a sweep
        app.screen.query_one(ConfigForm).set_value("lr", "0.01")
        app.main.view("launch").pick("sweep:scratch-lr-sweep")
        await pilot.pause()
        app.main.view("launch").pick("scratch")
        await pilot.pause()
        assert (field(app, "epochs"), field(app, "lr")) == ("3", "0.01")

        await pilot.press("ctrl+s")  # what Start would train: the edited config
        dialog = app.screen
        assert "epochs=3" in str(dialog.query_one("#start-choice-changes", Static).render())
        await pilot.press("escape")

        await pilot.press("ctrl+r")  # the one way back to the preset
        await pilot.pause()
        assert (field(app, "epochs"), field(app, "lr")) == ("30", "0.05")
        assert not prompt_of(picker, "scratch").rstrip().endswith("*")
        await pilot.press("down", "up")
        assert field(app, "epochs") == "30"

    drive(app, scenario)


def test_reset_shows_only_where_there_are_edits(tiny_data, tmp_path):
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=ScriptedEngine())

    def reset_shown() -> bool:
        return any(b.action == "reset_form" for _, b, *_ in app.screen.active_bindings.values())

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        assert not reset_shown()
        await type_into(pilot, "classes", "2")
        assert reset_shown()
        await type_into(pilot, "classes", "0")  # back to the preset's own value by hand
        assert not reset_shown()
        assert not prompt_of(app.screen.query_one(PresetPicker), "scratch").rstrip().endswith("*")

    drive(app, scenario)
