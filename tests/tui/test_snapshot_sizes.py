"""Each view and the start dialog at the two sizes a first hour meets: 80x24 and 120x36.

On one fixture runs folder (the Runs table's fixture runs and the Studies' runs together: what
varies among them becomes columns), a missing data folder at a fixed path (the Launch and
Preview views say so), no clocks on screen. Update with `--snapshot-update` on this file after a
deliberate change, and look at the SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tui import make_fixture_runs, study_runs, wait_for
from tui_trainer.runs.store import Run
from tui_trainer.tui.app import make_app
from tui_trainer.tui.jobs import StartMode
from tui_trainer.tui.screens.start_choice import StartChoiceScreen

MISSING_DATA = Path("/nonexistent/caltech101")
SIZES = {"80x24": (80, 24), "120x36": (120, 36)}


async def settle(pilot) -> None:
    """The data check done and pending messages landed; no toasts in the picture."""
    await wait_for(pilot, lambda: pilot.app.data_checked, what="the data check")
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


async def show(pilot, view: str) -> None:
    app = pilot.app
    if view == "watch":
        app.show_run(Run(app.runs_dir / "20240101-100000-scratch"))
    elif view == "start":
        app.push_screen(StartChoiceScreen("scratch", StartMode.IN_CONSOLE))
    else:
        await pilot.press(str(["launch", "watch", "runs", "studies", "preview"].index(view) + 1))
    await pilot.pause()
    if view == "preview":
        status = app.main.view("preview").query_one("#preview-status")
        await wait_for(pilot, lambda: status.has_class("-error"), what="the preview's error")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("view", ["launch", "watch", "runs", "studies", "preview", "start"])
def test_view(snap_compare, tmp_path, view, size):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    study_runs(runs_dir)
    app = make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)

    async def run_before(pilot):
        await settle(pilot)
        await show(pilot, view)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
