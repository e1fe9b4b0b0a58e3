"""Start asks where to train: in this console or detached, and for a sweep also N members in
parallel (+/- sets N). Keyboard first: the session's last choice is focused, enter starts,
escape cancels. The command line a parallel start spawns. Snapshots of the dialog at both
sizes, with and without the parallel row."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList

from tests.support.tui import ScriptedEngine, drive, make_fixture_runs, study_runs, wait_for
from tui_trainer.runs.detached import cuda_gpus, sweep_command
from tui_trainer.tui.app import make_app
from tui_trainer.tui.jobs import StartChoice, StartMode
from tui_trainer.tui.screens.start_choice import (
    START_OPTIONS,
    ParallelOffer,
    StartChoiceScreen,
    default_parallel,
)

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


def option_ids(app) -> list[str]:
    options = app.screen.query_one(OptionList)
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


def test_every_way_to_start_is_one_row_of_the_dialog(tmp_path):
    app = fixture_app(tmp_path)

    async def scenario(pilot):
        app.push_screen(StartChoiceScreen("scratch", StartMode.IN_CONSOLE))
        await pilot.pause()
        assert option_ids(app) == [StartMode.IN_CONSOLE, StartMode.DETACHED]  # a single run
        app.pop_screen()
        offer = ParallelOffer(2, 5, gpus=0)
        app.push_screen(StartChoiceScreen("sweep x", StartMode.IN_CONSOLE, parallel=offer))
        await pilot.pause()
        assert option_ids(app) == [o.mode for o in START_OPTIONS]  # a sweep: every row

    drive(app, scenario)


def test_the_parallel_count_defaults_to_the_gpus_and_never_exceeds_the_members():
    assert default_parallel(gpus=0, most=6) == 2  # CPU: two members at once
    assert default_parallel(gpus=1, most=6) == 2  # one GPU: shared by two
    assert default_parallel(gpus=4, most=6) == 4  # one member per GPU
    assert default_parallel(gpus=8, most=3) == 3  # no idle processes
    assert "cores split" in ParallelOffer(2, 6, gpus=0).where
    assert ParallelOffer(2, 6, gpus=1).where == "sharing the one GPU"
    assert ParallelOffer(4, 6, gpus=4).where == "one GPU each (4 GPUs here)"


def test_the_gpus_counted_are_the_ones_a_child_would_see(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2,3")
    assert cuda_gpus() == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cuda_gpus() == 0


def test_a_parallel_start_spawns_sweep_with_its_count(tmp_path):
    common = {"seeds": 3, "data_dir": tmp_path / "data", "runs_dir": tmp_path / "runs"}
    command = sweep_command("scratch-lr-sweep", {"classes": "5"}, **common, parallel=2)
    args = command[command.index("-m") + 1 :]
    assert args[:6] == ["tui_trainer", "sweep", "scratch-lr-sweep", "--set", "classes=5", "--seeds"]
    assert args[args.index("--parallel") + 1] == "2"
    assert args[args.index("--runs-dir") + 1] == str((tmp_path / "runs").resolve())
    assert "--parallel" not in sweep_command("scratch-lr-sweep", {}, **common)  # one at a time


def test_a_sweep_offers_n_in_parallel_and_starts_it_detached(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")  # three GPUs: three at once first
    runs_dir = tmp_path / "runs"
    study_runs(runs_dir)  # scratch-lr-sweep: one member of six done
    app = make_app(data_dir=tmp_path, runs_dir=runs_dir)  # any folder: nothing trains here
    starts: list[tuple[str, int | None]] = []
    app.detached.start_sweep = lambda sweep, overrides, seeds, parallel=None: starts.append(
        (sweep.name, parallel)
    )

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.data_problem = ""  # an empty folder: the dialog is what is tested here
        app.main.view("launch").pick("sweep:scratch-lr-sweep")
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, StartChoiceScreen)
        assert highlighted_mode(app) == StartMode.IN_CONSOLE and app.screen.count == 3
        await pilot.press("+", "+", "+")  # 5 to run: no more than 5 at once
        assert highlighted_mode(app) == StartMode.PARALLEL and app.screen.count == 5
        await pilot.press("-", "-", "-", "-")  # never under 2
        assert app.screen.count == 2
        options = app.screen.query_one(OptionList)
        prompt = str(options.get_option(StartMode.PARALLEL).prompt)
        assert "2 in parallel" in prompt and "one GPU each (3 GPUs here)" in prompt
        await pilot.press("enter")
        await pilot.pause()
        assert starts == [("scratch-lr-sweep", 2)]
        assert (app.start_mode, app.start_parallel) == (StartMode.PARALLEL, 2)

        await pilot.press("ctrl+s")  # the choice and its count are remembered
        assert highlighted_mode(app) == StartMode.PARALLEL and app.screen.count == 2
        await pilot.press("up", "enter")  # detached, one at a time
        await pilot.pause()
        assert starts[-1] == ("scratch-lr-sweep", None)

    drive(app, scenario)


def test_a_sweep_set_to_the_cpu_splits_its_cores(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")  # GPUs here, but the sweep asks the CPU
    runs_dir = tmp_path / "runs"
    study_runs(runs_dir)
    app = make_app(data_dir=tmp_path, runs_dir=runs_dir)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.data_problem = ""
        app.main.view("launch").pick("sweep:scratch-lr-sweep")
        await pilot.pause()
        app.screen.query_one("#sweep-set").value = "device=cpu"
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, StartChoiceScreen) and app.screen.count == 2
        prompt = str(app.screen.query_one(OptionList).get_option(StartMode.PARALLEL).prompt)
        assert "on the CPU, its" in prompt and "cores split between them" in prompt

    drive(app, scenario)


def test_the_dialog_answers_a_typed_choice(tmp_path):
    app = fixture_app(tmp_path)
    answers: list[StartChoice | None] = []

    async def scenario(pilot):
        offer = ParallelOffer(2, 4, gpus=2)
        for keys in (["enter"], ["down", "enter"], ["+", "enter"], ["escape"]):
            app.push_screen(
                StartChoiceScreen("sweep x", StartMode.IN_CONSOLE, "", offer), answers.append
            )
            await pilot.pause()
            await pilot.press(*keys)
            await pilot.pause()
        assert answers == [
            StartChoice(StartMode.IN_CONSOLE),
            StartChoice(StartMode.DETACHED),
            StartChoice(StartMode.PARALLEL, 3),
            None,
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


def test_start_choice_dialog_for_a_sweep_in_parallel(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        offer = ParallelOffer(2, 5, gpus=1)
        dialog = StartChoiceScreen(
            "sweep scratch-lr-sweep (5 to run)", StartMode.PARALLEL, "", offer
        )
        pilot.app.push_screen(dialog)
        await pilot.pause()

    assert snap_compare(fixture_app(tmp_path), terminal_size=SMALL, run_before=run_before)


def test_start_choice_dialog_for_a_sweep_in_parallel_on_gpus(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        offer = ParallelOffer(4, 5, gpus=4)
        dialog = StartChoiceScreen(
            "sweep scratch-lr-sweep (5 to run)", StartMode.PARALLEL, "#1 scratch lr=0.02", offer
        )
        pilot.app.push_screen(dialog)
        await pilot.pause()

    assert snap_compare(fixture_app(tmp_path), terminal_size=LARGE, run_before=run_before)
