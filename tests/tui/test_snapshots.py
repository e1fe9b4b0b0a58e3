"""Snapshots of the main screens on a fixture runs folder (pytest-textual-snapshot).

Deterministic by construction: fixed terminal sizes, fixed run ids and numbers, a missing data
folder at a fixed path, no clocks on screen. Update with `pytest tests/tui --snapshot-update`
after a deliberate change, and look at the SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.tui import (
    ScriptedEngine,
    make_fixture_runs,
    study_runs,
    wait_for,
    write_fixture_results,
)
from tui_trainer.runs.store import Run
from tui_trainer.tui.app import make_app

MISSING_DATA = Path("/nonexistent/caltech101")
SMALL = (80, 24)
LARGE = (120, 36)


def fixture_app(tmp_path, engine=None):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    return make_app(data_dir=MISSING_DATA, runs_dir=runs_dir, engine=engine)


async def settle(pilot) -> None:
    """Wait for the data check and let pending messages land; no toasts in the picture."""
    await wait_for(pilot, lambda: pilot.app.data_checked, what="the data check")
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


def test_launch_screen_with_missing_dataset(snap_compare, tmp_path):
    assert snap_compare(fixture_app(tmp_path), terminal_size=SMALL, run_before=settle)


def test_launch_screen_refuses_a_bad_value(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#lr").value = "-1"
        await pilot.press("escape")  # focus back on the presets: no blinking cursor
        await pilot.pause()

    assert snap_compare(fixture_app(tmp_path), terminal_size=SMALL, run_before=run_before)


def test_results_table_sorted_by_test_accuracy(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("3")
        table = pilot.app.screen.query_one("#table")
        table.sort_rows("test_acc", reverse=True)
        await pilot.pause()

    assert snap_compare(fixture_app(tmp_path), terminal_size=SMALL, run_before=run_before)


def test_results_table_in_a_large_terminal(snap_compare, tmp_path):
    assert snap_compare(fixture_app(tmp_path), press=["3"], terminal_size=LARGE, run_before=settle)


def test_run_detail(snap_compare, tmp_path):
    assert snap_compare(
        fixture_app(tmp_path), press=["3", "enter"], terminal_size=SMALL, run_before=settle
    )


def test_run_detail_per_class_results(snap_compare, tmp_path):
    app = fixture_app(tmp_path)
    write_fixture_results(Run(app.runs_dir / "20240101-100000-scratch"), MISSING_DATA)

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("3", "enter")
        pilot.app.screen.query_one("#detail").scroll_end(animate=False)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_compare_two_runs(snap_compare, tmp_path):
    assert snap_compare(
        fixture_app(tmp_path),
        press=["3", "space", "down", "space", "c"],
        terminal_size=SMALL,
        run_before=settle,
    )


def test_watch_a_run_followed_from_its_folder(snap_compare, tmp_path):
    app = fixture_app(tmp_path)

    async def run_before(pilot):
        await settle(pilot)
        app.show_run(Run(app.runs_dir / "20240101-100000-scratch"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_watch_a_finished_run_of_this_app(snap_compare, tiny_data, tmp_path):
    engine = ScriptedEngine(epochs=3, steps=8, run_id="20240105-120000-scratch")
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        pilot.app.screen.query_one("#lr").value = "0.02"
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: app.live.finished, what="the run")
        await settle(pilot)

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


def study_app(tmp_path):
    """The app on a runs folder that fills a few cells of the report's tables."""
    study_runs(tmp_path / "runs")
    return make_app(data_dir=MISSING_DATA, runs_dir=tmp_path / "runs")


def test_studies_backbones_beside_the_paper(snap_compare, tmp_path):
    app = study_app(tmp_path)

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("4")
        view = app.main.view("studies")
        view.query_one("#study-tabs").active = "tab-backbones"
        await pilot.pause()
        view.current_table.focus()
        await pilot.press("p", "down", "right")
        await pilot.pause()

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


def test_launch_a_sweep_with_one_member_done(snap_compare, tmp_path):
    app = study_app(tmp_path)

    async def run_before(pilot):
        await settle(pilot)
        app.main.view("launch").pick("sweep:scratch-lr-sweep")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
