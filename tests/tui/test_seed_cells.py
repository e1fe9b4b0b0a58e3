"""Studies cells over seeds: mean ± std (n) in the table, the list of runs behind a cell, the
paper's number and where ours lie; snapshots of a three-seed cell and of its list."""

from __future__ import annotations

from pathlib import Path

from tests.support.tui import FULL_SCRATCH, cell_texts, drive, wait_for, write_fixture_run
from tui_trainer.tui.app import make_app
from tui_trainer.tui.screens.cell_runs import CellRunsScreen
from tui_trainer.tui.screens.run_detail import RunDetailScreen

MISSING_DATA = Path("/nonexistent/caltech101")
LARGE = (120, 36)
TEST_ACC = 5  # the scratch table's TEST_ACC column (LR, NUM_EPOCHS, STEP_SIZE, GAMMA, MAX_VAL)
ROW = 3  # lr 0.05 / 30 / 20 / 0.1: the scratch preset, the report's 0.49


def seed_runs(runs_dir: Path) -> list[str]:
    """The scratch row at seeds 42, 0 and 1 (test 0.38, 0.50, 0.44), and the lr 0.01 row at two
    seeds, one of them failed."""
    made = [
        write_fixture_run(
            runs_dir,
            f"20240301-10000{i}-s{seed}",
            "scratch",
            {**FULL_SCRATCH, "seed": seed},
            2,
            "completed",
            acc,
        )
        for i, (seed, acc) in enumerate(((42, 0.38), (0, 0.50), (1, 0.44)))
    ]
    low_lr = {"lr": 0.01, "epochs": 30, "step_size": 15, "gamma": 0.1}
    write_fixture_run(runs_dir, "20240301-110000-lr01", "scratch", low_lr, 2, "completed", 0.26)
    write_fixture_run(
        runs_dir, "20240301-110001-lr01-s0", "scratch", {**low_lr, "seed": 0}, 1, "failed", None
    )
    return [run.id for run in made]


def seed_app(tmp_path):
    runs_dir = tmp_path / "runs"
    ids = seed_runs(runs_dir)
    return make_app(data_dir=MISSING_DATA, runs_dir=runs_dir), ids


async def scratch_table(pilot):
    await wait_for(pilot, lambda: pilot.app.data_checked, what="the data check")
    await pilot.press("4")
    await pilot.pause()
    view = pilot.app.main.view("studies")
    view.query_one("#study-tabs").active = "tab-scratch"
    await pilot.pause()
    view.current_table.focus()
    pilot.app.clear_notifications()
    await pilot.pause()
    return view.current_table


def test_a_three_seed_cell_lists_its_runs_and_each_opens(tmp_path):
    app, ids = seed_app(tmp_path)

    async def scenario(pilot):
        table = await scratch_table(pilot)
        rows = cell_texts(table)
        assert rows[ROW][TEST_ACC] == "0.440 ± 0.060 (n=3)"
        assert rows[ROW][TEST_ACC + 1] == ", ".join(ids)  # RUN: the three runs behind it
        # one seed of two failed: one figure, out of two expected
        assert rows[2][TEST_ACC] == "0.260 (n=1 of 2)"
        table.cursor_coordinate = (ROW, TEST_ACC)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, CellRunsScreen)
        listed = cell_texts(screen.query_one("#cell-runs"))
        assert listed == [
            (ids[0], "42", "completed", "0.380"),
            (ids[1], "0", "completed", "0.500"),
            (ids[2], "1", "completed", "0.440"),
        ]
        await pilot.press("down", "enter")
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run.id == ids[1]
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("escape")
        assert not isinstance(app.screen, CellRunsScreen | RunDetailScreen)

        # a cell of two runs, one failed: the list shows both
        table.cursor_coordinate = (2, TEST_ACC)
        await pilot.press("enter")
        assert [r[2] for r in cell_texts(app.screen.query_one("#cell-runs"))] == [
            "completed",
            "failed",
        ]

    drive(app, scenario)


def test_paper_says_where_ours_lie(tmp_path):
    app, _ = seed_app(tmp_path)

    async def scenario(pilot):
        table = await scratch_table(pilot)
        await pilot.press("p")
        rows = cell_texts(table)
        # TEST_ACC then its paper column: the report's 0.49 lies inside our [0.38, 0.50]
        assert rows[ROW][6:8] == ("0.440 ± 0.060 (n=3)", "0.49 (within)")
        assert rows[2][7] == "0.26 (within)"  # a single run equal to the paper's number
        table.cursor_coordinate = (ROW, 7)  # the paper cell opens the same runs
        await pilot.press("enter")
        figure = str(app.screen.query_one("#cell-runs-figure").render())
        assert "paper 0.49: ours within (0.380 to 0.500)" in figure

    drive(app, scenario)


def test_snapshot_a_three_seed_cell_beside_the_paper(snap_compare, tmp_path):
    app, _ = seed_app(tmp_path)

    async def run_before(pilot):
        table = await scratch_table(pilot)
        await pilot.press("p")
        table.cursor_coordinate = (ROW, 6)
        await pilot.pause()

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


def test_snapshot_the_runs_behind_a_cell(snap_compare, tmp_path):
    app, _ = seed_app(tmp_path)

    async def run_before(pilot):
        table = await scratch_table(pilot)
        await pilot.press("p")
        table.cursor_coordinate = (ROW, 6)
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(app, terminal_size=LARGE, run_before=run_before)


def test_the_sweep_panel_repeats_members_over_seeds(tmp_path):
    runs_dir = tmp_path / "runs"
    seed_runs(runs_dir)  # seed 42 of the scratch row is there already
    app = make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.main.view("launch").pick("sweep:scratch-seeds")
        await pilot.pause()
        panel = app.main.view("launch").sweep_panel
        names = [row.member.name for row in panel.states]
        assert names == [
            "scratch-lr0.05-e30-s20-g0.1",
            "scratch-lr0.05-e30-s20-g0.1-seed0",
            "scratch-lr0.05-e30-s20-g0.1-seed1",
        ]
        # the fixture made all three seeds: nothing left to run
        assert panel.counts_line().startswith("3 members over seeds 42, 0, 1 · 3 done")
        field = panel.query_one("#sweep-set")
        field.value = "seeds=4"  # as `tui-trainer sweep scratch-seeds --seeds 4`
        await pilot.pause()
        assert [m.config.seed for m in panel.sweep.members] == [42, 0, 1, 2]
        assert [m.name for m in panel.to_run()] == ["scratch-lr0.05-e30-s20-g0.1-seed2"]
        field.value = "seeds=many"
        await pilot.pause()
        assert panel.has_class("-invalid") and panel.sweep is None
        assert "seeds=N takes a whole number" in str(panel.query_one("#sweep-error").render())

    drive(app, scenario)
