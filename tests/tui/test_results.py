"""Runs screen on a fixture runs folder: sort, filter, open, compare, delete; and following a
run that trains elsewhere through its metrics.jsonl."""

from __future__ import annotations

import json
import os

from textual.widgets import Input, Static

from tests.support.tui import (
    FIXTURE_IDS,
    cell_texts,
    drive,
    make_fixture_runs,
    wait_for,
    write_fixture_run,
)
from tui_trainer.files import write_json_atomic
from tui_trainer.runs.store import Run, list_runs
from tui_trainer.tui.app import make_app
from tui_trainer.tui.live import RunView
from tui_trainer.tui.widgets.plots import ComparePlot
from tui_trainer.tui.widgets.results_table import ResultsTable


def visible_ids(table: ResultsTable) -> list[str]:
    return [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]


def column_index(table: ResultsTable, key: str) -> int:
    return [c.key for c in table.shown_columns].index(key)


def test_sort_filter_open_compare_and_delete(tmp_path):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    app = make_app(data_dir=tmp_path, runs_dir=runs_dir)

    async def scenario(pilot):
        await pilot.press("3")
        table = app.screen.query_one(ResultsTable)
        assert visible_ids(table) == FIXTURE_IDS  # oldest first, like the folder
        keys = [c.key for c in table.shown_columns]
        row = dict(zip(keys, table.get_row_at(0), strict=True))
        assert row["lr"] == "0.05" and row["test_acc"] == "0.4120" and row["duration"] == "4.0m"

        # sort by test accuracy with the key: ascending, then descending; runs without it stay last
        table.move_cursor(column=column_index(table, "test_acc"))
        await pilot.press("s")
        assert visible_ids(table) == [
            FIXTURE_IDS[1],
            FIXTURE_IDS[0],
            FIXTURE_IDS[3],
            FIXTURE_IDS[2],
        ]
        await pilot.press("s")
        assert visible_ids(table) == [
            FIXTURE_IDS[3],
            FIXTURE_IDS[0],
            FIXTURE_IDS[1],
            FIXTURE_IDS[2],
        ]
        assert "sorted by Test acc ▼" in str(
            app.screen.query_one("#results-status", Static).render()
        )

        # sort by clicking a header
        lr = column_index(table, "lr")
        table.scroll_to(x=0, animate=False)  # the cursor on Test acc scrolled the table right
        await pilot.pause()
        x = sum(table.columns[c.key].get_render_width(table) for c in table.shown_columns[:lr])
        await pilot.click(ResultsTable, offset=(x + 1, 0))  # the LR header
        assert table.sort_by == "lr"
        assert visible_ids(table) == [
            FIXTURE_IDS[2],
            FIXTURE_IDS[3],
            FIXTURE_IDS[1],
            FIXTURE_IDS[0],
        ]

        # filter by text
        await pilot.press("slash", *"scratch")
        assert sorted(visible_ids(table)) == FIXTURE_IDS[:2]
        app.screen.query_one("#filter", Input).value = "interrupted finetune"
        await pilot.pause()
        assert visible_ids(table) == [FIXTURE_IDS[2]]
        app.screen.query_one("#filter", Input).value = ""
        await pilot.press("escape")
        assert app.focused is table

        # open a run: config, summary, curves
        table.move_cursor(row=visible_ids(table).index(FIXTURE_IDS[3]))
        await pilot.press("enter")
        assert type(app.screen).__name__ == "RunDetailScreen"
        config_text = str(app.screen.query_one("#detail-config", Static).render())
        assert "freeze=conv" in config_text and "lr=0.005" in config_text
        assert "test_acc=0.8380" in str(app.screen.query_one("#detail-summary").render())
        await pilot.press("escape")

        # compare: mark two runs, overlay their curves
        await pilot.press("c")
        assert type(app.screen).__name__ == "MainScreen"  # nothing marked yet
        table.move_cursor(row=visible_ids(table).index(FIXTURE_IDS[0]))
        await pilot.press("space")
        table.move_cursor(row=visible_ids(table).index(FIXTURE_IDS[1]))
        await pilot.press("space", "c")
        assert type(app.screen).__name__ == "CompareScreen"
        legend = str(app.screen.query_one("#compare-acc", ComparePlot).render())
        assert "100000-scratch lr=0.05" in legend and "110000-scratch lr=0.01" in legend
        await pilot.press("escape")

        # delete, after a confirmation
        table.move_cursor(row=visible_ids(table).index(FIXTURE_IDS[2]))
        await pilot.press("d")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")
        assert (runs_dir / FIXTURE_IDS[2]).exists()
        await pilot.press("d", "y")
        await pilot.pause()
        assert not (runs_dir / FIXTURE_IDS[2]).exists() and FIXTURE_IDS[2] not in visible_ids(table)

    drive(app, scenario)
    assert [r.id for r in list_runs(runs_dir)] == [FIXTURE_IDS[0], FIXTURE_IDS[1], FIXTURE_IDS[3]]


def test_table_refreshes_when_runs_change_on_disk(tmp_path):
    runs_dir = tmp_path / "runs"
    app = make_app(data_dir=tmp_path, runs_dir=runs_dir)

    async def scenario(pilot):
        await pilot.press("3")
        table = app.screen.query_one(ResultsTable)
        assert table.row_count == 0
        make_fixture_runs(runs_dir)
        await wait_for(pilot, lambda: table.row_count == len(FIXTURE_IDS), what="the refresh")

    drive(app, scenario)


def write_running_run(runs_dir, run_id="20240103-080000-scratch"):
    """A run folder as a headless `tui-trainer run` in another process leaves it mid-way."""
    run = Run(runs_dir / run_id)
    run.path.mkdir(parents=True)
    config = {"epochs": 3, "lr": 0.05, "model": "alexnet"}
    write_json_atomic(run.config_path, {"config": config, "preset": "scratch", "overrides": {}})
    # this process stands in for the other one: alive on this host, so status stays running
    summary = {
        "status": "running",
        "pid": os.getpid(),
        "host": os.uname().nodename,
        "started_at": 0.0,
    }
    run.write_summary(summary)
    return run, summary


def append_rows(run: Run, rows: list[dict], partial: str = "") -> None:
    with run.metrics_path.open("a") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows) + partial)


def step_rows(first: int, count: int, epoch: int = 1) -> list[dict]:
    return [
        {"kind": "step", "epoch": epoch, "step": i, "global_step": i, "loss": 3.0 / i, "lr": 0.05}
        for i in range(first, first + count)
    ]


def test_a_headless_run_is_followed_through_its_metrics_file(tmp_path):
    runs_dir = tmp_path / "runs"
    run, summary = write_running_run(runs_dir)
    append_rows(run, step_rows(1, 3), partial='{"kind": "step", "epo')  # a line being written
    app = make_app(data_dir=tmp_path, runs_dir=runs_dir)

    async def scenario(pilot):
        await pilot.press("2")  # watch: nothing trains here, so it follows the running run
        watch = app.main.view("watch")
        await wait_for(pilot, lambda: watch.view is not None, what="the follow")
        assert watch.view.run_id == run.id and watch.view.source == "disk"
        assert len(watch.view.steps) == 3 and watch.view.status == "running"

        with run.metrics_path.open("a") as fh:  # the cut line completes, more arrive
            fh.write('ch": 1, "step": 4, "global_step": 4, "loss": 0.7, "lr": 0.05}\n')
        epoch = {
            "kind": "epoch",
            "epoch": 1,
            "train_loss": 1.0,
            "train_acc": 0.4,
            "val_loss": 1.2,
            "val_acc": 0.35,
            "lr": 0.05,
            "seconds": 3.0,
        }
        append_rows(run, step_rows(5, 2) + [epoch])
        await wait_for(pilot, lambda: len(watch.view.epochs) == 1, what="the new rows")
        assert len(watch.view.steps) == 6 and watch.view.best_val_acc == 0.35
        assert "followed from its folder" in str(watch.query_one("#run-status").render())

        write_json_atomic(run.summary_path, {**summary, "status": "completed", "test_acc": 0.3})
        await wait_for(pilot, lambda: watch.view.status == "completed", what="the end")
        await pilot.press("s")  # nothing of ours to stop: no dialog
        assert type(app.screen).__name__ == "MainScreen" and app.main.current == "watch"

    drive(app, scenario)


def test_run_view_from_a_fixture_folder(tmp_path):
    run = make_fixture_runs(tmp_path)[0]
    view = RunView.from_run(run)
    assert view.status == "completed" and view.finished and view.epochs_total == 4
    assert view.fraction() == 1.0 and view.eta_seconds() is None and not view.evaluating
    assert view.best_epoch == 4 and len(view.steps) == 24


def test_delete_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    import pytest

    from tui_trainer.errors import UserError
    from tui_trainer.runs.store import delete_run

    (tmp_path / "notes").mkdir()
    with pytest.raises(UserError, match="not a run folder"):
        delete_run(Run(tmp_path / "notes"))
    assert (tmp_path / "notes").is_dir()


def quick_runs(runs_dir):
    """Three quick runs told apart by classes or seed alone."""
    for i, (classes, seed) in enumerate([(2, 42), (3, 42), (2, 0)]):
        overrides = {"classes": classes, "seed": seed, "image_size": 64, "epochs": 1}
        write_fixture_run(
            runs_dir,
            f"2024020{i + 1}-100000-scratch",
            "scratch",
            overrides,
            1,
            "completed",
            0.5 + i / 10,
        )


def test_runs_table_at_80_columns_shows_what_tells_runs_apart(tmp_path):
    runs_dir = tmp_path / "runs"
    quick_runs(runs_dir)
    app = make_app(data_dir=tmp_path, runs_dir=runs_dir)

    async def scenario(pilot):
        await pilot.press("3")
        table = app.screen.query_one(ResultsTable)
        keys = [c.key for c in table.shown_columns]
        assert keys[:5] == ["mark", "id", "status", "classes", "seed"]
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[1:7] == ["Run", "Status", "Classes", "Seed", "Best val", "Test acc"]
        # id, status, what differs and both accuracies fit 80 columns, whole
        test_acc = keys.index("test_acc")
        widths = [table.columns[k].get_render_width(table) for k in keys[: test_acc + 1]]
        assert sum(widths) <= table.size.width
        assert cell_texts(table)[1][1:5] == ("20240202-100000-scratch", "completed", "3", "42")

        # a filter that hides every row keeps the layout
        await pilot.press("slash", "z")
        assert table.row_count == 0
        assert [table.columns[k].get_render_width(table) for k in keys[: test_acc + 1]] == widths
        await pilot.press("backspace", "escape")

        # `s` on the mark column sorts the marked runs first, and says so
        table.move_cursor(row=2, column=0)
        await pilot.press("space", "s")
        assert visible_ids(table)[0] == "20240203-100000-scratch"
        assert "sorted by marked" in str(app.screen.query_one("#results-status").render())

        # `a`: every setting; again: what differs
        await pilot.press("a")
        assert "lr" in [c.key for c in table.shown_columns]
        await pilot.press("a")
        assert "lr" not in [c.key for c in table.shown_columns]

    drive(app, scenario, size=(80, 24))
