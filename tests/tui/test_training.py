"""Training from the console: the real engine on the tiny set, stop, the queue, the event relay,
and quitting during a run."""

from __future__ import annotations

import subprocess
import sys
import threading

from textual.widgets import Input

from tests.support.paths import REPO
from tests.support.runs import cache_entries
from tests.support.tui import ScriptedEngine, drive, notices, wait_for
from tui_trainer.events import Epoch, Log, Step
from tui_trainer.runs.store import list_runs
from tui_trainer.tui.app import make_app
from tui_trainer.tui.jobs import JobQueue
from tui_trainer.tui.messages import EngineEvent, StepBatch
from tui_trainer.tui.relay import EventRelay
from tui_trainer.tui.widgets.plots import EpochPlot, StepLossPlot
from tui_trainer.tui.widgets.results_table import ResultsTable

TINY_FORM = {"image_size": "64", "resize": "72", "batch_size": "8", "device": "cpu"}


def set_form(app, **values: str) -> None:
    for key, value in values.items():
        app.screen.query_one(f"#{key}").value = value


def braille_cells(widget) -> int:
    """How many plotted points a plot widget shows (plotext draws them in braille)."""
    text = str(widget.render())
    return sum(0x2800 < ord(ch) <= 0x28FF for ch in text)


def test_real_engine_run_shows_live_and_lands_in_the_table(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir)

    async def scenario(pilot):
        set_form(app, **TINY_FORM, epochs="2", lr="0.01")
        await pilot.press("ctrl+s", "enter")
        assert type(app.screen).__name__ == "MainScreen" and app.main.current == "watch"
        await wait_for(pilot, lambda: app.live.steps, what="the first steps")
        assert app.live.status == "running"
        await wait_for(pilot, lambda: app.current_job is None, what="the run to finish")
        await pilot.pause()
        live = app.live
        assert live.status == "completed" and len(live.epochs) == 2
        assert len(live.steps) == 2 * live.steps_per_epoch > 0
        watch = app.main.view("watch")
        assert watch.view is live
        assert braille_cells(watch.query_one(StepLossPlot)) > 0
        assert braille_cells(watch.query_one("#acc-plot", EpochPlot)) > 0
        await pilot.press("3")
        table = app.screen.query_one(ResultsTable)
        (row,) = table.rows_data
        assert row["status"] == "completed" and row["lr"] == 0.01 and row["test_acc"] is not None

    drive(app, scenario)
    (run,) = list_runs(runs_dir)
    assert run.status() == "completed" and run.config()["image_size"] == 64


def test_stop_asks_then_the_run_ends_interrupted(tiny_data, tmp_path):
    engine = ScriptedEngine(epochs=3, steps=5, hold_after=4)
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine)

    async def scenario(pilot):
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: app.live and app.live.steps, what="steps")
        await pilot.press("s")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")  # changed our mind: still training
        assert app.current_job is not None
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: app.current_job is None, what="the stop")
        assert app.live.status == "interrupted"
        assert "interrupted" in str(app.screen.query_one("#run-status").render())

    drive(app, scenario)
    (run,) = list_runs(tmp_path / "runs")
    assert run.status() == "interrupted"


def test_a_stop_while_the_images_decode_ends_the_job_interrupted(tiny_data, tmp_path, monkeypatch):
    from tui_trainer.data import decode as data

    runs_dir = tmp_path / "runs"
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir)
    real, decoding = data.decode_image, threading.Event()

    def held(path, resize, size):  # the decode waits for the user's stop
        decoding.set()
        app.current_worker.cancelled_event.wait(60)
        return real(path, resize, size)

    monkeypatch.setattr(data, "decode_image", held)

    async def scenario(pilot):
        set_form(app, **TINY_FORM, epochs="1")
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, decoding.is_set, what="the decode")
        assert app.live.status == "preparing"
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: app.current_job is None, what="the stop")
        await pilot.pause()
        assert app.live.status == "interrupted"
        assert app.live.log[-1].endswith("images: no run folder was created")
        assert "interrupted" in str(app.screen.query_one("#run-status").render())

    drive(app, scenario)
    assert list_runs(runs_dir) == [] and cache_entries() == []


def test_a_queue_of_two_runs_trains_in_order_and_can_be_edited(tiny_data, tmp_path):
    engine = ScriptedEngine(epochs=1, steps=3, hold_after=2)
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine)

    async def scenario(pilot):
        await pilot.press("ctrl+s", "enter")  # job 1 trains (and holds until stopped)
        await wait_for(pilot, engine.started.is_set, what="job 1")
        await pilot.press("1")
        for lr in ("0.02", "0.03", "0.04"):  # jobs 2, 3, 4 wait
            app.screen.query_one("#lr", Input).value = lr
            await pilot.press("ctrl+s", "enter")
        assert [j.number for j in app.queue.jobs] == [2, 3, 4]
        queue = app.screen.query_one("#queue")
        assert queue.option_count == 3
        queue.focus()
        await pilot.press("down", "down", "shift+up")  # job 4 before job 3
        assert [j.number for j in app.queue.jobs] == [2, 4, 3]
        await pilot.press("x")  # remove job 4 (the highlight stayed on it)
        assert [j.number for j in app.queue.jobs] == [2, 3]
        engine.hold_after = None  # the queued jobs finish on their own
        app.stop_current()
        await wait_for(
            pilot,
            lambda: len(engine.calls) == 3 and app.current_job is None,
            what="the queue to drain",
        )
        assert queue.option_count == 0

    drive(app, scenario)
    assert [overrides.get("lr") for _, overrides in engine.calls] == [None, "0.02", "0.03"]
    statuses = sorted(r.status() for r in list_runs(tmp_path / "runs"))
    assert statuses == ["completed", "completed", "interrupted"]


def test_relay_coalesces_steps_and_keeps_order():
    posted = []
    now = [0.0]
    relay = EventRelay(posted.append, job=1, interval=0.1, clock=lambda: now[0])
    for i in range(1, 101):  # 100 steps in 0.05 s: the first goes out, the rest wait
        now[0] = i * 0.0005
        relay(
            Step(run_id="r", epoch=1, step=i, steps_per_epoch=200, global_step=i, loss=1.0, lr=0.1)
        )
    relay(Log(run_id="r", message="hello"))  # any other event flushes what is pending first
    for i in range(101, 201):  # the epoch's last step is flushed at once
        now[0] = 1 + i * 0.0005
        relay(
            Step(run_id="r", epoch=1, step=i, steps_per_epoch=200, global_step=i, loss=1.0, lr=0.1)
        )
    relay(
        Epoch(
            run_id="r",
            epoch=1,
            epochs=1,
            train_loss=1.0,
            train_acc=0.5,
            val_loss=1.0,
            val_acc=0.5,
            lr=0.1,
            seconds=1.0,
        )
    )
    kinds = [type(m).__name__ for m in posted]
    assert kinds == [
        "StepBatch",
        "StepBatch",
        "EngineEvent",
        "StepBatch",
        "StepBatch",
        "EngineEvent",
    ]
    steps = [s.step for m in posted if isinstance(m, StepBatch) for s in m.steps]
    assert steps == list(range(1, 201))
    assert isinstance(posted[-1], EngineEvent) and isinstance(posted[-1].event, Epoch)


def test_job_queue_moves_and_removes():
    queue = JobQueue()
    for n in (1, 2, 3):
        queue.add(type("J", (), {"number": n})())
    assert queue.move(3, -2) and [j.number for j in queue.jobs] == [3, 1, 2]
    assert not queue.move(3, -1)
    assert queue.remove(1).number == 1 and queue.pop_next().number == 3 and len(queue) == 1


QUIT_SCRIPT = """
import asyncio, sys, threading
from pathlib import Path
from tui_trainer.tui.app import make_app

async def main(data, runs):
    app = make_app(data_dir=data, runs_dir=runs)
    async with app.run_test(size=(100, 30)) as pilot:
        for key, value in {"image_size": "64", "resize": "72", "batch_size": "8",
                           "device": "cpu", "epochs": "500"}.items():
            app.screen.query_one("#" + key).value = value
        await pilot.press("ctrl+s", "enter")
        while not (app.live and app.live.steps):
            await pilot.pause(0.05)
        await pilot.press("q")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("y")
        while app.is_running:
            await pilot.pause(0.05)
    print("exited")

asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
print("threads", sorted(t.name for t in threading.enumerate()))
"""


def test_quit_during_a_run_stops_it_and_the_process_exits(tiny_data, tmp_path):
    """In a child process: the real engine trains, q + y, and the interpreter must exit."""
    runs_dir = tmp_path / "runs"
    # The timeout bounds the whole child: a process that never exits raises TimeoutExpired.
    out = subprocess.run(
        [sys.executable, "-c", QUIT_SCRIPT, str(tiny_data), str(runs_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "exited" in out.stdout and "threads ['MainThread']" in out.stdout, out.stdout
    (run,) = list_runs(runs_dir)
    assert run.status() == "interrupted" and run.summary()["epochs_done"] < 500


def test_a_job_that_cannot_start_is_reported_and_the_queue_goes_on(tiny_data, tmp_path):
    from tui_trainer.errors import UserError

    engine = ScriptedEngine(epochs=1, steps=2, hold_after=1)

    def refuse_cuda(config, **kwargs):
        if config.device == "cuda":
            raise UserError("device=cuda but no CUDA GPU is visible: use --device cpu")
        return engine(config, **kwargs)

    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=refuse_cuda)

    async def scenario(pilot):
        await pilot.press("ctrl+s", "enter")  # job 1 holds
        await wait_for(pilot, engine.started.is_set, what="job 1")
        await pilot.press("1")
        app.screen.query_one("#device").value = "cuda"
        await pilot.press("ctrl+s", "enter")  # job 2 will fail to start
        app.screen.query_one("#device").value = "cpu"
        await pilot.press("ctrl+s", "enter")  # job 3 runs after it
        engine.hold_after = None
        app.stop_current()
        await wait_for(
            pilot, lambda: len(engine.calls) == 2 and app.current_job is None, what="the queue"
        )
        assert any("no CUDA GPU" in m for m in notices(app))

    drive(app, scenario)
    assert sorted(r.status() for r in list_runs(tmp_path / "runs")) == ["completed", "interrupted"]
