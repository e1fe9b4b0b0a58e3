"""Start asks where to train: in this console or detached. Keyboard first: the session's last
choice is focused, enter starts, escape cancels. Snapshots of the dialog at both sizes."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList

from tests.support.tui import ScriptedEngine, drive, make_fixture_runs, wait_for
from tui_trainer.tui.app import make_app
from tui_trainer.tui.jobs import StartMode
from tui_trainer.tui.screens.start_choice import START_OPTIONS, StartChoiceScreen

TINY_FORM = {"image_size": "64", "resize": "72", "batch_size": "8", "device": "cpu"}
# as tests/tui/test_snapshots.py: fixed sizes, a missing data folder at a fixed path
MISSING_DATA = Path("/nonexistent/caltech101")
SMALL = (80, 24)
LARGE = (120, 36)


def fixture_app(tmp_path):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    return make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)


async def settle(pilot) -> None:
    """The data check done, pending messages landed, no toasts in the picture."""
    await wait_for(pilot, lambda: pilot.app.data_checked, what="the data check")
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


def highlighted_mode(app) -> StartMode:
    options = app.screen.query_one(OptionList)
    return StartMode(options.get_option_at_index(options.highlighted).id)


def test_start_asks_where_and_remembers_the_choice(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    engine = ScriptedEngine(epochs=1, steps=2)
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir, engine=engine)
    detached_starts: list[tuple[str, dict[str, str]]] = []
    # the child itself is tests/reliability/test_detached.py's business: here, what is asked
    app.detached.start_run = lambda preset, overrides: detached_starts.append((preset, overrides))

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        for key, value in TINY_FORM.items():
            app.screen.query_one(f"#{key}").value = value
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, StartChoiceScreen)
        assert app.focused is app.screen.query_one(OptionList)
        assert highlighted_mode(app) == StartMode.IN_CONSOLE  # the first time: in this console
        await pilot.press("3")  # the view keys wait for an answer
        assert isinstance(app.screen, StartChoiceScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, StartChoiceScreen)
        assert engine.calls == [] and detached_starts == [] and app.main.current == "launch"

        await pilot.press("ctrl+s", "down", "enter")  # detached
        await pilot.pause()
        assert engine.calls == [] and [p for p, _ in detached_starts] == ["scratch"]
        assert detached_starts[0][1]["image_size"] == "64"
        assert app.start_mode == StartMode.DETACHED

        await pilot.press("ctrl+s")  # the last choice is the one focused now
        assert highlighted_mode(app) == StartMode.DETACHED
        await pilot.press("up", "enter")  # back to this console: it trains here
        await wait_for(pilot, lambda: engine.calls and app.current_job is None, what="the run")
        assert len(detached_starts) == 1 and app.start_mode == StartMode.IN_CONSOLE

    drive(app, scenario)


def test_every_way_to_start_is_one_row_of_the_dialog(tmp_path):
    app = fixture_app(tmp_path)

    async def scenario(pilot):
        app.push_screen(StartChoiceScreen("scratch", StartMode.IN_CONSOLE))
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == [
            o.mode for o in START_OPTIONS
        ]

    drive(app, scenario)


def test_start_choice_dialog(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.push_screen(StartChoiceScreen("scratch", StartMode.IN_CONSOLE))
        await pilot.pause()

    assert snap_compare(fixture_app(tmp_path), terminal_size=SMALL, run_before=run_before)


def test_start_choice_dialog_for_a_sweep_behind_a_run(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        dialog = StartChoiceScreen(
            "sweep scratch-lr-sweep (5 to run)", StartMode.DETACHED, "#1 scratch lr=0.02"
        )
        pilot.app.push_screen(dialog)
        await pilot.pause()

    assert snap_compare(fixture_app(tmp_path), terminal_size=LARGE, run_before=run_before)
