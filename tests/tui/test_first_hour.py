"""The console at 80x24 as a first-time user meets it (issue 22, points 8 and 9): nothing cut or
wrapped out of sight, plain words instead of the report's column names and internal commands."""

from __future__ import annotations

import os
import time

import plotext
from PIL import Image
from textual.widgets import DataTable, ProgressBar

from tests.support.tui import (
    ScriptedEngine,
    cell_texts,
    drive,
    make_fixture_runs,
    notices,
    study_runs,
    wait_for,
    write_fixture_results,
)
from tui_trainer.config import RunConfig
from tui_trainer.files import write_json_atomic
from tui_trainer.runs.detached import DetachedStart, run_command
from tui_trainer.runs.display import plot_epoch_metric
from tui_trainer.runs.results import misclassified_images
from tui_trainer.runs.store import Run
from tui_trainer.tui.app import make_app
from tui_trainer.tui.detached_starts import pending_view
from tui_trainer.tui.jobs import Job
from tui_trainer.tui.widgets.key_bar import KeyBar
from tui_trainer.tui.widgets.results_table import ResultsTable

SMALL = (80, 24)
LONG_ID = "20240103-080000-scratch-classes5-size64-seed0-lr0.05"


def screen_lines(app) -> list[str]:
    """What the terminal shows, one string per row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def running_run(runs_dir, steps: int):
    """A run training in another process (this one stands in for it), `steps` steps into
    epoch 1 of 30, as its folder reads before the first epoch ends."""
    run = Run(runs_dir / LONG_ID)
    run.path.mkdir(parents=True)
    config = RunConfig().with_overrides({"epochs": 30, "lr": 0.05}).to_dict()
    write_json_atomic(run.config_path, {"config": config, "preset": "scratch", "overrides": {}})
    summary = {
        "status": "running",
        "pid": os.getpid(),
        "host": os.uname().nodename,
        "started_at": time.time() - 60,
        "epochs": 30,
        "steps_per_epoch": 45,  # what the run writer records at RunStarted
    }
    run.write_summary(summary)
    rows = [
        {"kind": "step", "epoch": 1, "step": i, "global_step": i, "loss": 2.0, "lr": 0.05}
        for i in range(1, steps + 1)
    ]
    run.metrics_path.write_text("".join(f"{row}\n".replace("'", '"') for row in rows))
    return run


def test_watch_header_keeps_its_epoch_line_and_a_followed_run_knows_its_epoch(tmp_path):
    run = running_run(tmp_path / "runs", steps=11)
    app = make_app(data_dir=tmp_path, runs_dir=tmp_path / "runs")

    async def scenario(pilot):
        app.show_run(run)
        await pilot.press("2")
        watch = app.main.view("watch")
        await wait_for(pilot, lambda: watch.view is not None, what="the follow")
        lines = screen_lines(app)
        # a long run id cuts its own line instead of wrapping the epoch line out of the row
        assert lines[1].startswith("running  20240103-080000-scratch-classes5")
        assert lines[2].startswith("epoch 1/30  step 11/45  ETA ")
        assert "ETA -" not in lines[2] and "/?" not in lines[2]
        assert watch.query_one(ProgressBar).percentage > 0

    drive(app, scenario, size=SMALL)


def test_watch_log_shows_how_a_run_ended_at_80x24(tiny_data, tmp_path):
    engine = ScriptedEngine(epochs=3, steps=4)
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: app.live and app.live.finished, what="the run")
        # the writer records the epoch's length at the start, for a follower in epoch 1
        assert Run(app.runs_dir / app.live.run_id).summary()["steps_per_epoch"] == 4
        await pilot.press("2")
        await pilot.pause()
        lines = screen_lines(app)
        assert lines[-1].startswith(" s Stop") or "Quit" in lines[-1]  # the key bar
        assert lines[-2].startswith("ended completed")  # the log's last row, in sight
        assert lines[-3].startswith("epoch 3/3")

        # l: this console's run, and a word when it is shown already
        await pilot.press("l")
        assert "Already showing" in notices(app)[-1] and "this console's run" in notices(app)[-1]

    drive(app, scenario, size=SMALL)


def test_key_bar_never_cuts_quit_and_hides_queue_keys_while_empty(tmp_path):
    app = make_app(data_dir=tmp_path, runs_dir=tmp_path / "runs")

    async def scenario(pilot):
        queue = app.screen.query_one("#queue")
        queue.focus()
        await pilot.pause()
        bar = app.screen.query_one(KeyBar)
        assert "Remove" not in str(bar._shown) and "Sooner" not in str(bar._shown)
        app.queue.add(Job(1, "scratch", {"lr": "0.01"}, RunConfig()))
        app.queue_changed.publish(None)
        await pilot.pause()
        shown = bar._shown
        assert "Remove" in str(shown) and str(shown).endswith("q Quit")
        assert shown.cell_length <= SMALL[0]

    drive(app, scenario, size=SMALL)


def test_preview_error_is_read_whole_at_80_columns(tiny_data, tmp_path):
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs")

    async def scenario(pilot):
        await pilot.press("5", "o", *"nosuch/file.jpg", "enter")
        view = app.main.view("preview")
        status = view.query_one("#preview-status")
        await wait_for(pilot, lambda: status.has_class("-error"), what="the error")
        await pilot.pause()
        text = " ".join(line.strip() for line in screen_lines(app)[1:6])
        assert "…" not in text and "does not exist" in text
        assert status.size.height >= 2

    drive(app, scenario, size=SMALL)


def test_a_detached_start_reads_as_the_command_a_person_types(tmp_path):
    command = run_command("scratch", {"lr": "0.01"}, data_dir=tmp_path, runs_dir=tmp_path / "runs")
    start = DetachedStart(
        "scratch lr=0.01", 9127, tmp_path / "x.log", tmp_path, 0.0, tuple(command), None
    )
    line = pending_view(start).log[0]
    assert line == "started detached (pid 9127): tui-trainer run scratch --set lr=0.01"


def test_one_epoch_loss_axis_is_not_eight_digits_of_one_number():
    plotext.clear_figure()
    plotext.plotsize(40, 12)
    epoch = {"epoch": 1, "train_loss": 1.35206, "val_loss": 1.34878}
    plot_epoch_metric(plotext, [{**epoch, "train_acc": 0.4, "val_acc": 0.4}], "loss", "Loss")
    drawn = plotext.build()
    plotext.clear_figure()
    assert "1.35206" not in drawn and "1.34878" not in drawn
    assert "1.2" in drawn and "1.4" in drawn  # +-10% around the losses


def test_console_tables_use_words_and_the_misclassified_list_no_empty_column(tmp_path):
    runs_dir = tmp_path / "runs"
    run = make_fixture_runs(runs_dir)[0]
    results = write_fixture_results(run, tmp_path / "images")
    for path, _, _ in misclassified_images(results):  # every image on disk
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(path)
    study_runs(runs_dir)
    app = make_app(data_dir=tmp_path, runs_dir=runs_dir)

    async def scenario(pilot):
        await pilot.press("4")
        await pilot.pause()
        studies = app.main.view("studies").current_table
        headers = [str(c.label) for c in studies.columns.values()]
        assert headers[:6] == ["LR", "Epochs", "Step size", "Gamma", "Best val", "Test acc"]

        await pilot.press("3")
        table = app.screen.query_one(ResultsTable)
        labels = " ".join(str(c.label) for c in table.columns.values())
        assert "_" not in labels and "Train loss" in labels
        table.move_cursor(row=table.get_row_index(run.id))
        await pilot.press("enter", "m")
        listed = app.screen.query_one("#misclassified-table", DataTable)
        assert [str(c.label) for c in listed.columns.values()] == [
            "Image",
            "True class",
            "Predicted",
        ]
        assert len(cell_texts(listed)[0]) == 3
        # a one-cell scrollbar beside the rows, not a two-glyph thumb that reads as text
        assert listed.styles.scrollbar_size_vertical == 1

    drive(app, scenario, size=SMALL)


def test_a_followed_run_knows_its_epoch_length_before_its_first_step(tmp_path):
    from tui_trainer.tui.live import RunView

    view = RunView.from_run(running_run(tmp_path / "runs", steps=0))
    assert view.steps_per_epoch == 45 and view.eta_seconds() is None  # no step to time yet
