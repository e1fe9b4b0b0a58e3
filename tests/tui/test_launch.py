"""Launch screen: preset picker, the form's validation (the config code behind --set), the
missing-dataset banner, and the CLI entry points that open the app."""

from __future__ import annotations

from textual.widgets import Input, Static
from typer.testing import CliRunner

from tests.support.tui import ScriptedEngine, drive, wait_for
from tui_trainer.config import load_preset
from tui_trainer.tui.app import make_app
from tui_trainer.tui.widgets.choice import Choice
from tui_trainer.tui.widgets.config_form import ConfigForm, check_form
from tui_trainer.tui.widgets.preset_picker import PresetPicker


async def type_into(pilot, field: str, text: str) -> None:
    """Focus a form field, clear it and type `text` key by key, as a person would."""
    widget = pilot.app.screen.query_one(f"#{field}", Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text)
    await pilot.pause()


def test_check_form_keeps_only_changed_values_as_overrides():
    values = {"lr": "0.05", "epochs": "30", "classes": "5", "model": "alexnet"}
    result = check_form(load_preset("scratch"), values)
    assert result.errors == {}
    assert result.overrides == {"classes": "5"}
    assert result.config is not None and result.config.classes == 5 and result.config.lr == 0.05


def test_check_form_pins_errors_to_their_field():
    assert "lr" in check_form(load_preset("scratch"), {"lr": "fast"}).errors
    assert "lr" in check_form(load_preset("scratch"), {"lr": "-1"}).errors
    crossed = check_form(load_preset("scratch"), {"freeze": "conv", "weights": "none"})
    assert list(crossed.errors) == ["freeze"] and "weights=imagenet" in crossed.errors["freeze"]
    resize = check_form(load_preset("scratch"), {"image_size": "64", "resize": "32"})
    assert list(resize.errors) == ["resize"]


def test_choosing_a_preset_fills_the_form(tiny_data, tmp_path):
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=ScriptedEngine())

    async def scenario(pilot):
        form = app.screen.query_one(ConfigForm)
        assert form.preset.name == "scratch"
        assert app.screen.query_one("#lr", Input).value == "0.05"
        picker = app.screen.query_one(PresetPicker)
        picker.focus()
        while picker.current is None or picker.current.name != "freeze-conv":
            await pilot.press("down")
        assert app.screen.query_one("#lr", Input).value == "0.005"
        assert app.screen.query_one("#weights", Choice).value == "imagenet"
        assert app.screen.query_one("#freeze", Choice).value == "conv"
        info = str(app.screen.query_one("#preset-info", Static).render())
        assert "freeze-conv" in info and "Transfer learning" in info
        await pilot.press("enter")  # picking a preset moves on to its first field
        assert app.focused is app.screen.query_one("#lr", Input)

    drive(app, scenario)


def test_an_edited_value_starts_and_a_bad_value_is_refused(tiny_data, tmp_path):
    engine = ScriptedEngine(epochs=1, steps=2)
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine)

    async def scenario(pilot):
        await type_into(pilot, "lr", "fast")
        field = app.screen.query_one("#field-lr")
        assert field.has_class("-invalid")
        assert "not a number" in str(field.query_one(".field-error", Static).render())
        await pilot.press("ctrl+s")
        assert engine.calls == [] and app.current_job is None
        assert app.focused is app.screen.query_one("#lr", Input)  # sent back to the field
        assert app.screen.query_one(ConfigForm).has_class("-invalid")

        await type_into(pilot, "lr", "0.02")
        assert not field.has_class("-invalid")
        await type_into(pilot, "classes", "5")
        await pilot.press("ctrl+s", "enter")
        await pilot.pause()
        assert engine.calls == [("scratch", {"lr": "0.02", "classes": "5"})]

    drive(app, scenario)


def test_missing_dataset_opens_and_says_where_it_looked(tmp_path):
    missing = tmp_path / "nowhere" / "caltech101"
    engine = ScriptedEngine()
    app = make_app(data_dir=missing, runs_dir=tmp_path / "runs", engine=engine)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        banner = app.screen.query_one("#data-status", Static)
        text = str(banner.render())
        assert banner.has_class("-invalid")
        for hint in (str(missing), "--data", "TUI_TRAINER_DATA", "tui-trainer data download"):
            assert hint in text.replace("\n", " ")
        await pilot.press("ctrl+s")
        assert engine.calls == []
        await pilot.press("3")  # the rest of the app still works
        assert app.main.current == "runs"

    drive(app, scenario)


def test_cli_opens_the_app_with_no_command_and_with_tui(monkeypatch, tmp_path):
    from pathlib import Path

    from tui_trainer.cli import app as cli
    from tui_trainer.tui import app as app_module

    opened = []

    class FakeApp:
        return_code = None  # as an app that exited normally

        def __init__(self, **kwargs):
            opened.append(kwargs)

        def run(self):
            pass

    monkeypatch.setattr(app_module, "make_app", FakeApp)
    runner = CliRunner()
    assert runner.invoke(cli.app, []).exit_code == 0
    result = runner.invoke(
        cli.app, ["tui", "--data", str(tmp_path), "--runs-dir", "r", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert opened[0] == {"data_dir": None, "runs_dir": None, "device": None}
    assert opened[1] == {"data_dir": tmp_path, "runs_dir": Path("r"), "device": "cpu"}
    assert "tui" in runner.invoke(cli.app, ["--help"]).output


def test_the_cli_loads_no_textual_and_the_app_loads_no_torch_until_needed():
    """`tui-trainer run` does not pay for Textual, and the app module does not import torch:
    the dataset check imports it in a thread once the app is up."""
    import subprocess
    import sys

    def loaded(module: str, *names: str) -> list[bool]:
        code = f"import sys, {module}; print(*[n in sys.modules for n in {names!r}])"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return [word == "True" for word in out.stdout.split()]

    assert loaded("tui_trainer.cli.app", "textual") == [False]
    assert loaded("tui_trainer.tui.app", "textual", "torch") == [True, False]
