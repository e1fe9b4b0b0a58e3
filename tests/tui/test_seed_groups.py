"""Runs view, grouped by seed (`g`): one row per experiment with its spread; enter or `c`
compares groups as bands. On hand-written run folders with known curves (support/seed_runs)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from tests.support.seed_runs import FINETUNE_IDS, SCRATCH_IDS, make_seed_runs, write_seed_run
from tests.support.tui import cell_texts, drive, notices, wait_for
from tui_trainer.runs.groups import group_by_seed, spread_text
from tui_trainer.runs.store import Run
from tui_trainer.tui.app import make_app
from tui_trainer.tui.widgets.group_table import GROUP_COLUMNS, GroupTable, group_row
from tui_trainer.tui.widgets.plots import ComparePlot
from tui_trainer.tui.widgets.results_table import ResultsTable

MISSING_DATA = Path("/nonexistent/caltech101")
SMALL = (80, 24)


def seed_app(tmp_path):
    runs_dir = tmp_path / "runs"
    make_seed_runs(runs_dir)
    return make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)


def rows_by_label(table: GroupTable) -> list[dict[str, str]]:
    keys = [c.key for c in GROUP_COLUMNS]
    return [dict(zip(keys, row, strict=True)) for row in cell_texts(table)]


def test_grouped_table_merges_seed_repeats_and_gives_their_spread(tmp_path):
    app = seed_app(tmp_path)

    async def scenario(pilot):
        await pilot.press("3")
        view = app.main.view("runs")
        runs_table = view.query_one(ResultsTable)
        assert runs_table.row_count == 7
        runs_table.move_cursor(row=1)
        await pilot.press("space")  # a mark on the runs table, kept while grouped
        await pilot.press("g")
        await pilot.pause()
        groups = view.query_one(GroupTable)
        assert view.has_class("-grouped") and app.focused is groups
        assert groups.display and not runs_table.display
        rows = rows_by_label(groups)
        assert [(r["label"], r["precision"], r["runs"], r["seeds"]) for r in rows] == [
            ("scratch epochs=4", "fp32", "3", "42, 0, 1"),
            ("scratch lr=0.01 epochs=4", "fp32", "1", "42"),
            ("scratch epochs=4", "bf16", "1", "7"),
            ("finetune epochs=3", "fp32", "2", "42, 0"),
        ]
        scratch, finetune = rows[0], rows[3]
        assert scratch["statuses"] == "2 completed, 1 running"
        assert scratch["max_val_acc"] == "0.450 ± 0.071 (n=2 of 3)"  # completed runs only
        assert scratch["test_acc"] == "0.440 ± 0.085 (n=2 of 3)"
        assert finetune["statuses"] == "2 completed"
        assert finetune["test_acc"] == "0.800 ± 0.014 (n=2)"
        assert rows[1]["test_acc"] == "0.070"
        status = str(view.query_one("#results-status", Static).render())
        assert status.startswith("4 seed groups of 7 runs")

        # sorted by a figure's mean; groups without a completed run would stay last
        groups.move_cursor(column=[c.key for c in GROUP_COLUMNS].index("test_acc"))
        await pilot.press("s")
        assert [r["test_acc"][:5] for r in rows_by_label(groups)] == [
            "0.070",
            "0.440",
            "0.460",
            "0.800",
        ]

        # the filter works on groups
        view.query_one("#filter", Input).value = "finetune"
        await pilot.pause()
        assert [r["label"] for r in rows_by_label(groups)] == ["finetune epochs=3"]
        view.query_one("#filter", Input).value = ""
        await pilot.pause()

        # a group is deleted run by run, from the runs table
        await pilot.press("escape", "d")
        assert "Delete runs one at a time" in notices(app)[-1]
        assert all((app.runs_dir / run_id).exists() for run_id in SCRATCH_IDS)

        # back: the runs table, its mark kept
        await pilot.press("g")
        await pilot.pause()
        assert not view.has_class("-grouped") and runs_table.display and not groups.display
        assert runs_table.marked == {"20240201-110000-scratch"}
        assert app.focused is runs_table

    drive(app, scenario)


def test_enter_on_a_group_compares_its_runs_as_one_band(tmp_path):
    app = seed_app(tmp_path)

    async def scenario(pilot):
        await pilot.press("3", "g")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        screen = app.screen
        assert [[r.id for r in g.runs] for g in screen.groups] == [SCRATCH_IDS]
        assert screen.runs == []
        header = str(screen.query_one("#compare-runs", Static).render())
        assert "scratch epochs=4 (n=3)" in header and "2 completed, 1 running" in header
        assert "Test acc 0.440 ± 0.085 (n=2 of 3)" in header
        assert "band n=3 to epoch 2, n=2 to epoch 4" in header
        legend = str(screen.query_one("#compare-acc", ComparePlot).render())
        assert "scratch epochs=4 (n=3)" in legend
        await pilot.press("escape")

        # a group of one run opens that run
        await pilot.press("down", "enter")
        assert type(app.screen).__name__ == "RunDetailScreen"
        assert app.screen.run.id == "20240201-130000-scratch"

    drive(app, scenario)


def test_c_compares_marked_groups_one_band_each(tmp_path):
    app = seed_app(tmp_path)

    async def scenario(pilot):
        await pilot.press("3", "g")
        await pilot.pause()
        await pilot.press("space", "c")
        assert type(app.screen).__name__ == "MainScreen"
        assert "Mark two or more seed groups" in notices(app)[-1]
        await pilot.press("down", "down", "down", "space", "c")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        assert [[r.id for r in g.runs] for g in app.screen.groups] == [SCRATCH_IDS, FINETUNE_IDS]
        legend = str(app.screen.query_one("#compare-loss", ComparePlot).render())
        assert "scratch epochs=4 (n=3)" in legend and "finetune epochs=3 (n=2)" in legend
        assert "Compare 2 seed groups (5 runs)" in app.screen.sub_title

    drive(app, scenario)


# --- snapshots ------------------------------------------------------------------------------


async def settle(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.data_checked, what="the data check")
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


def test_grouped_runs_table(snap_compare, tmp_path):
    assert snap_compare(
        seed_app(tmp_path), press=["3", "g"], terminal_size=SMALL, run_before=settle
    )


def test_compare_a_seed_group_as_a_band(snap_compare, tmp_path):
    assert snap_compare(
        seed_app(tmp_path), press=["3", "g", "enter"], terminal_size=SMALL, run_before=settle
    )


def test_a_new_seed_joins_its_group_while_grouped(tmp_path):
    from tests.support.seed_runs import write_seed_run

    app = seed_app(tmp_path)

    async def scenario(pilot):
        await pilot.press("3", "g")
        await pilot.pause()
        groups = app.main.view("runs").query_one(GroupTable)
        assert rows_by_label(groups)[0]["runs"] == "3"
        write_seed_run(
            app.runs_dir,
            "20240203-080000-scratch",
            "scratch",
            {"epochs": 4, "seed": 5},
            "fp32",
            [0.02, 0.30, 0.50, 0.60],
            "completed",
            0.56,
        )
        await wait_for(pilot, lambda: rows_by_label(groups)[0]["runs"] == "4", what="the refresh")
        row = rows_by_label(groups)[0]
        assert row["seeds"] == "42, 0, 1, 5" and row["statuses"] == "3 completed, 1 running"
        assert row["test_acc"] == "0.480 ± 0.092 (n=3 of 4)"
        assert groups.row_count == 4  # joined its group: no new row

    drive(app, scenario)


def test_a_seed_counts_once_in_a_group_row_by_its_latest_completed_run(tmp_path):
    overrides = {"epochs": 4, "seed": 42}
    write_seed_run(tmp_path, "20240301-100000-scratch", "scratch", overrides, "fp32",
                   [0.1, 0.2], "failed", None)  # fmt: skip
    write_seed_run(tmp_path, "20240301-110000-scratch", "scratch", overrides, "fp32",
                   [0.1, 0.3], "completed", 0.30)  # fmt: skip
    write_seed_run(tmp_path, "20240301-120000-scratch", "scratch", overrides, "fp32",
                   [0.1, 0.4], "completed", 0.40)  # fmt: skip  # a rerun of seed 42
    write_seed_run(tmp_path, "20240301-130000-scratch", "scratch", {**overrides, "seed": 0},
                   "fp32", [0.1, 0.5], "completed", 0.50)  # fmt: skip
    (group,) = group_by_seed(Run(p) for p in sorted(tmp_path.iterdir()))
    row = group_row(group)
    assert row["runs"] == 4 and row["of"] == 2
    assert row["test_acc"].values == (0.40, 0.50)  # seed 42's latest completed run, then seed 0
    assert spread_text(row["test_acc"], of=row["of"]) == "0.450 ± 0.071 (n=2)"
