"""A search on the Launch view: its space and budget, the trials of a finished study (pruned
ones as such, the best marked), the optimization history and the importances, all read off the
UI thread; Start trains trials here (one job each) or spawns `tui-trainer tune` detached."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.widgets import DataTable, Static

from tests.support.tui import ScriptedEngine, cell_texts, drive, wait_for, write_fixture_run
from tui_trainer.tui.app import make_app
from tui_trainer.tui.detached_starts import DetachedStarts
from tui_trainer.tui.jobs import StartMode
from tui_trainer.tui.screens.start_choice import StartChoiceScreen
from tui_trainer.tui.widgets import search_panel
from tui_trainer.tui.widgets.search_panel import HistoryPlot, SearchPanel

SEARCH = "scratch-search"
# trial number -> (lr, gamma, state, epochs trained, value)
TRIALS = {
    0: (0.01, 0.1, "complete", 2, 0.55),
    1: (0.05, 0.5, "complete", 2, 0.80),
    2: (0.002, 0.1, "pruned", 1, 0.20),
    3: (0.02, 0.3, "complete", 2, 0.65),
}


def make_study(runs_dir: Path, trials: dict = TRIALS) -> None:
    """A journal study of `trials` whose runs are fixture run folders (no training)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    from tui_trainer.studies import search

    study = optuna.create_study(
        study_name=SEARCH,
        storage=search.storage_for(runs_dir, SEARCH),
        direction="maximize",
    )
    dists = {
        "lr": FloatDistribution(0.001, 0.1, log=True),
        "gamma": CategoricalDistribution((0.1, 0.3, 0.5)),
    }
    for number, (lr, gamma, state, epochs, value) in trials.items():
        run_id = f"20260101-00000{number}-{SEARCH}-t{number}"
        status = "completed" if state == "complete" else state
        overrides = {"lr": lr, "gamma": gamma, "epochs": 2}
        write_fixture_run(runs_dir, run_id, "scratch", overrides, epochs, status, value)
        done = state == "complete"
        study.add_trial(
            create_trial(
                params={"lr": lr, "gamma": gamma},
                distributions=dists,
                value=value if done else None,
                state=TrialState.COMPLETE if done else TrialState.PRUNED,
                intermediate_values={1: value},
                user_attrs={search.RUN_ATTR: run_id},
            )
        )


def app_for(tmp_path: Path, data_dir: Path | str = "/nonexistent/caltech101"):
    return make_app(
        data_dir=data_dir,
        runs_dir=tmp_path / "runs",
        engine=ScriptedEngine(),
        sweeps=[],
        searches=[SEARCH],
    )


async def pick_search(pilot) -> SearchPanel:
    pilot.app.main.view("launch").pick(f"search:{SEARCH}")
    panel = pilot.app.screen.query_one(SearchPanel)
    await wait_for(pilot, lambda: panel.spec is not None, what="the search read")
    await pilot.pause()
    return panel


def text_of(pilot, selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).render())


def test_picking_a_search_shows_its_space_and_budget(tmp_path):
    app = app_for(tmp_path)

    async def scenario(pilot):
        panel = await pick_search(pilot)
        space = text_of(pilot, "#search-space")
        for key in ("lr 0.001..0.1 log", "step_size 5..25 step 5", "gamma 0.1|0.3|0.5"):
            assert key in space
        assert "median pruner n_startup_trials=5" in space
        budget = text_of(pilot, "#search-budget")
        assert "24 trials x 30 epochs = 720 epochs" in budget and "no trial yet" in budget
        assert not panel.query_one("#search-trials", DataTable).display
        info = text_of(pilot, "#preset-info")
        assert "search scratch-search" in info and "Scratch AlexNet" in info
        # typed overrides apply to every trial: the budget follows epochs=2
        panel.query_one("#search-set").value = "classes=3 epochs=2"
        await wait_for(pilot, lambda: "x 2 epochs" in text_of(pilot, "#search-budget"))
        panel.query_one("#search-set").value = "lr=0.1"  # a searched key cannot be fixed
        await wait_for(pilot, lambda: panel.has_class("-invalid"), what="the error")
        assert "lr is searched" in text_of(pilot, "#search-error")

    drive(app, scenario)


def test_a_finished_study_lists_trials_history_and_importances(tmp_path, monkeypatch):
    make_study(tmp_path / "runs")
    threads: list[str] = []
    real = search_panel.study_view

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(search_panel, "study_view", recording)
    app = app_for(tmp_path)

    async def scenario(pilot):
        panel = await pick_search(pilot)
        await wait_for(pilot, lambda: panel.view is not None, what="the study")
        await pilot.pause()
        rows = cell_texts(panel.query_one("#search-trials", DataTable))
        assert [r[0] for r in rows] == ["0", "*1", "2", "3"]  # the best marked
        assert [r[1] for r in rows] == ["✓ complete", "✓ complete", "✂ pruned", "✓ complete"]
        assert rows[2][2] == "1/2" and rows[1][3] == "0.800"
        assert "lr=0.05" in rows[1][4] and "gamma=0.5" in rows[1][4]
        budget = text_of(pilot, "#search-budget")
        assert "7 of 48 epochs trained" in budget and "4 of 24 trials finished" in budget
        plot = panel.query_one(HistoryPlot)
        assert plot.display and plot._points == ([0, 1, 3], [0.55, 0.8, 0.65], [0.55, 0.8, 0.8])
        importances = text_of(pilot, "#search-importances")
        assert "parameter importances" in importances and "lr" in importances

    drive(app, scenario)
    assert threads and threading.main_thread().name not in threads


def test_importances_wait_for_two_completed_trials(tmp_path):
    make_study(tmp_path / "runs", {0: TRIALS[0], 2: TRIALS[2]})
    app = app_for(tmp_path)

    async def scenario(pilot):
        panel = await pick_search(pilot)
        await wait_for(pilot, lambda: panel.view is not None, what="the study")
        await pilot.pause()
        assert "once 2 trials completed" in text_of(pilot, "#search-importances")

    drive(app, scenario)


def test_enter_on_a_trial_opens_its_run(tmp_path):
    make_study(tmp_path / "runs")
    app = app_for(tmp_path)

    async def scenario(pilot):
        panel = await pick_search(pilot)
        await wait_for(pilot, lambda: panel.view is not None, what="the study")
        await pilot.pause()
        table = panel.query_one("#search-trials", DataTable)
        table.focus()
        table.move_cursor(row=2)
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert type(screen).__name__ == "RunDetailScreen"
        assert screen.run.id.endswith(f"{SEARCH}-t2")

    drive(app, scenario)


def test_start_detached_in_parallel_spawns_tune(tmp_path, tiny_data, monkeypatch):
    make_study(tmp_path / "runs", {0: TRIALS[0], 2: TRIALS[2]})
    spawned = []
    monkeypatch.setattr(
        DetachedStarts, "start", lambda self, label, command: spawned.append((label, command))
    )
    app = app_for(tmp_path, tiny_data)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        panel = await pick_search(pilot)
        await wait_for(pilot, lambda: panel.view is not None, what="the study")
        panel.query_one("#search-set").value = "classes=3 epochs=2 trials=5"
        await wait_for(pilot, lambda: "classes" in (panel.last.overrides or {}))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, StartChoiceScreen))
        dialog = app.screen
        assert [o.mode for o in dialog.options] == list(StartMode)
        assert "3 trials to run" in dialog.what
        assert "tune --parallel 2" in str(dialog._prompt(dialog.options[2]))
        await pilot.press("down", "down", "enter")  # N in parallel
        await pilot.pause()

    drive(app, scenario)
    label, command = spawned[0]
    assert label == f"search {SEARCH} (2 in parallel)"
    assert command[3:5] == ["tune", SEARCH]
    assert "--parallel" in command and "classes=3" in command and "epochs=2" in command
    assert command[command.index("--trials") + 1] == "5"


def test_snapshot_a_finished_search_at_80x24(snap_compare, tmp_path):
    make_study(tmp_path / "runs")
    app = app_for(tmp_path)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        panel = await pick_search(pilot)
        await wait_for(pilot, lambda: panel.view is not None, what="the study")
        await pilot.press("enter")  # onto the trials
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_start_in_this_console_trains_one_trial_per_job(tmp_path, tiny_data, monkeypatch):
    from tui_trainer.runs import launch

    make_study(tmp_path / "runs", {0: TRIALS[0], 2: TRIALS[2]})
    engine = ScriptedEngine(epochs=2, steps=2)
    # the search's worker trains through runs.launch.start_run, with its pruning judge
    monkeypatch.setattr(launch, "start_run", lambda *a, judge=None, **k: engine(*a, **k))
    app = app_for(tmp_path, tiny_data)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        panel = await pick_search(pilot)
        await wait_for(pilot, lambda: panel.view is not None, what="the study")
        panel.query_one("#search-set").value = "classes=3 trials=4"
        await wait_for(pilot, lambda: panel.last.spec.trials == 4, what="trials=4")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, StartChoiceScreen))
        modes = [o.mode for o in app.screen.options]
        assert modes == [StartMode.IN_CONSOLE, StartMode.DETACHED, StartMode.PARALLEL]
        await pilot.press("enter")  # in this console: the session's default
        await wait_for(pilot, lambda: len(engine.calls) == 2 and app.current_job is None)
        app.action_show_view("launch")
        await wait_for(pilot, lambda: panel.view and len(panel.view.trials) == 4)
        states = [t.state for t in panel.view.trials]
        assert states == ["complete", "pruned", "complete", "complete"]

    drive(app, scenario)
    assert all(
        preset == "scratch" and "lr" in o and o["classes"] == "3" for preset, o in engine.calls
    )
    # the study's trials 2 and 3 (the fixture's two trials are its 0 and 1)
    new = sorted(
        p.name
        for p in (tmp_path / "runs").iterdir()
        if "search-t" in p.name and "-00000" not in p.name
    )
    assert [name.rsplit("-", 1)[-1] for name in new] == ["t2", "t3"], new
