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
        assert "edited, ctrl+r resets: epochs=3" in hint

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


def test_start_estimates_the_time_from_the_probes_measured_rate(tiny_data, tmp_path):
    from tui_trainer.data.layout import find_layout, make_splits
    from tui_trainer.train.estimate import format_duration
    from tui_trainer.train.hardware import resolve_device
    from tui_trainer.train.host import cpu_threads
    from tui_trainer.train.precision_probe import cache_path, probe_key, store_rates
    from tui_trainer.train.precision_timing import CandidateRate

    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=ScriptedEngine())
    form = {"image_size": "64", "resize": "72", "epochs": "7", "device": "cpu"}

    def estimate_text() -> str:
        return str(app.screen.query_one("#start-choice-estimate", Static).render())

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        for key, value in form.items():
            app.screen.query_one(f"#{key}").value = value
        await pilot.pause()
        await pilot.press("ctrl+s")  # nothing timed yet: no figure, and why
        await wait_for(pilot, lambda: "no estimate yet" in estimate_text(), what="the estimate")
        assert "alexnet at 64 px has not been timed" in estimate_text()
        await pilot.press("escape")

        config = app.screen.query_one(ConfigForm).check().config
        rate = CandidateRate("fp32", train_ips=10.0, eval_ips=40.0)  # epoch rate: 6.67 img/s
        key = probe_key(config, resolve_device("cpu"), cpu_threads(config.threads))
        store_rates(key, [rate, CandidateRate("bf16", None, None, capped=True)], cache_path())
        images = len(make_splits(find_layout(tiny_data), config).train)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "about" in estimate_text(), what="the estimate")
        expected = format_duration(images * 7 / rate.epoch_ips)
        assert f"about {expected}: {images} training images x 7 epoch(s)" in estimate_text()
        assert "fp32" in estimate_text()

    drive(app, scenario)
