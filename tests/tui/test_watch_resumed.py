"""Watch and the run this console trained, resumed by `tui-trainer run --resume` in another
shell: Watch follows the other process, `f` finds it, and the system pane names that process
instead of calling its figures the console's."""

from __future__ import annotations

import signal
import subprocess

from textual.widgets import Static

from tests.support.processes import small_config, spawn_cli
from tests.support.tui import ScriptedEngine, drive, notices, wait_for
from tui_trainer.events import RunStatus
from tui_trainer.runs.store import Run
from tui_trainer.tui.app import make_app

RUN_ID = "20240105-120000-scratch"
# more epochs than the test waits for: the resumed process is stopped once it has been seen
EPOCHS = 500


def pane_text(app) -> str:
    return str(app.screen.query_one("#system-latest", Static).render())


def stop_child(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def test_watch_follows_our_run_resumed_in_another_shell(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_TRAINER_HEARTBEAT", "0.2")
    runs_dir = tmp_path / "runs"
    engine = ScriptedEngine(epochs=2, steps=4, hold_after=2, run_id=RUN_ID)
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir, engine=engine)
    config = small_config(epochs=EPOCHS)
    children: list[subprocess.Popen] = []

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.submit("scratch", {"epochs": str(EPOCHS)}, config)  # trains here, Watch shows it
        await wait_for(pilot, lambda: engine.started.is_set(), what="our run")
        app.stop_current()
        await wait_for(pilot, lambda: app.current_job is None, what="the stop")
        run = Run(runs_dir / RUN_ID)
        assert run.status() == RunStatus.INTERRUPTED
        watch = app.main.view("watch")
        assert app.main.current == "watch" and watch.view is app.live

        args = ["--runs-dir", runs_dir, "--data", tiny_data]
        children.append(spawn_cli("run", "--resume", RUN_ID, *args))
        child = children[0]
        await wait_for(
            pilot,
            lambda: watch.following is not None or child.poll() is not None,
            timeout=300,
            what="Watch to follow the resumed run",
        )
        assert child.poll() is None, child.stdout.read() if child.stdout else ""
        assert watch.following.id == RUN_ID and watch.view.source == "disk"
        assert watch.view.status == RunStatus.RUNNING
        # the pane names the process whose figures it shows: the resumed one, not ours
        mine = f"pid {child.pid})"
        await wait_for(pilot, lambda: mine in pane_text(app), timeout=300, what="its sample")
        assert "console" not in pane_text(app)

        await pilot.press("l")  # our own run: trained by that process now, so still followed
        assert watch.following is not None and watch.following.id == RUN_ID
        await pilot.press("f")
        assert watch.following.id == RUN_ID
        assert not any("No other run" in n for n in notices(app))

    try:
        drive(app, scenario, size=(120, 36))
    finally:
        for child in children:
            stop_child(child)
