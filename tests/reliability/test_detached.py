"""Detached starts: a `tui-trainer run` child in its own session that outlives the console.

It keeps training when its console is killed (SIGKILL: nothing of the console runs after it),
and a new console follows it to `completed`; the console that started one follows it from its
folder and stops it with SIGINT (`interrupted`, resumable); its output lands in the run
folder's console.log. A run held by another host, or by a process that is gone, is never
signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from tests.support.paths import REPO
from tests.support.processes import subprocess_env
from tests.support.runs import fake_run
from tests.support.tui import drive, notices, wait_for
from tui_trainer.files import read_json, write_json_atomic
from tui_trainer.runs import detached
from tui_trainer.runs.owner import OWNER_FILE, process_identity, this_process
from tui_trainer.runs.store import Run, list_runs
from tui_trainer.tui.app import make_app
from tui_trainer.tui.jobs import StartMode

DRIVER = REPO / "tests" / "reliability" / "console_driver.py"
WAIT_S = 600  # a bound on a hang, not a speed check
# what tests/tui/test_training.py types into the form: the scratch preset at 64 px
TINY_FORM = {"image_size": "64", "resize": "72", "batch_size": "8", "device": "cpu"}


def wait_until(condition, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert proc is None or proc.poll() is None, f"the console ended first ({what})"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def training_run(runs_dir) -> Run | None:
    return next((run for run in list_runs(runs_dir) if run.steps()), None)


def test_a_detached_run_outlives_its_console_and_a_new_console_follows_it(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    console = subprocess.Popen(
        [sys.executable, str(DRIVER), str(tiny_data), str(runs_dir), "detached", "2"],
        env=subprocess_env(HEADLESS="1"),
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run = wait_until(lambda: training_run(runs_dir), "the detached run's first step", console)
        trainer = read_json(run.owner_path)["pid"]
        assert trainer != console.pid and os.getsid(trainer) == trainer  # its own session
    finally:
        console.kill()  # SIGKILL
        console.wait()
    assert run.status() == "running"  # the console is gone, its run is not

    app = make_app(data_dir=tiny_data, runs_dir=runs_dir)

    async def scenario(pilot):
        await pilot.press("2")
        watch = app.main.view("watch")
        await wait_for(pilot, lambda: watch.following is not None, WAIT_S, "following it")
        assert watch.following.id == run.id
        await wait_for(pilot, lambda: watch.view.finished, WAIT_S, "the run's end")
        assert watch.view.status == "completed"

    drive(app, scenario)
    assert Run(run.path).status() == "completed" and len(run.epochs()) == 2
    log = (run.path / detached.LOG_NAME).read_text()
    assert "status: completed" in log  # the child's own summary, in the run folder


def test_the_console_starts_a_run_detached_follows_it_and_stops_it(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir)
    app.start_mode = StartMode.DETACHED  # as chosen before in this session

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        for key, value in {**TINY_FORM, "epochs": "50"}.items():
            app.screen.query_one(f"#{key}").value = value
        await pilot.press("ctrl+s", "enter")
        assert app.current_job is None and app.main.current == "watch"
        (start,) = app.detached.children.values()
        watch = app.main.view("watch")
        assert watch.view.status == "preparing" and "detached" in watch.view.label
        await wait_for(pilot, lambda: watch.following is not None, WAIT_S, "its run folder")
        run = watch.following
        await wait_for(pilot, lambda: run.epochs(), WAIT_S, "an epoch")
        await pilot.press("s")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("y")
        await wait_for(pilot, lambda: start.exit_code() is not None, WAIT_S, "the child's end")
        assert start.exit_code() == 130  # `tui-trainer run`'s code for interrupted
        await wait_for(pilot, lambda: watch.view.finished, 30, "the view to catch up")
        assert watch.view.status == "interrupted"

    drive(app, scenario)
    (run,) = list_runs(runs_dir)
    summary = run.summary()
    assert summary["status"] == "interrupted" and summary["epochs_done"] >= 1
    assert run.last_path.is_file()  # resumable with `tui-trainer run --resume`
    console_log = run.path / detached.LOG_NAME
    assert console_log.stat().st_ino == next((runs_dir / ".detached").glob("*.log")).stat().st_ino
    assert "status: interrupted" in console_log.read_text()


def owner_file(run_path, **owner) -> None:
    run_path.mkdir(parents=True)
    write_json_atomic(run_path / OWNER_FILE, owner)


def test_only_a_live_process_of_this_host_is_stoppable(tmp_path):
    elsewhere = Run(tmp_path / "elsewhere")
    owner_file(elsewhere.path, host="gpu-node-7", pid=os.getpid())
    gone = Run(tmp_path / "gone")
    owner_file(gone.path, **{**this_process(), "pid": 2**22 + 1})
    here = Run(tmp_path / "here")
    owner_file(here.path, **this_process())
    nobody = Run(tmp_path / "nobody")
    nobody.path.mkdir()

    far = detached.stop_target(elsewhere)
    assert not far.stoppable and "gpu-node-7" in far.why and "stop it there" in far.why
    assert not detached.stop_target(gone).stoppable and "gone" in detached.stop_target(gone).why
    assert not detached.stop_target(nobody).stoppable
    assert detached.stop_target(here) == detached.StopTarget(
        os.getpid(), socket.gethostname(), True
    )
    try:
        detached.interrupt(far)
    except ValueError as exc:
        assert "gpu-node-7" in str(exc)
    else:
        raise AssertionError("a holder on another host was signalled")


def test_a_sweep_starts_detached_and_the_console_follows_its_member(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir)
    app.start_mode = StartMode.DETACHED
    typed = "classes=3 image_size=64 resize=72 batch_size=8 device=cpu threads=1 epochs=50 seeds=1"

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        app.main.view("launch").pick("sweep:scratch-lr-sweep")
        await pilot.pause()
        app.screen.query_one("#sweep-set").value = typed
        await pilot.pause()
        await pilot.press("ctrl+s", "enter")
        (start,) = app.detached.children.values()
        assert start.command[3:5] == ("sweep", "scratch-lr-sweep")
        assert ("--set", "epochs=50") in zip(start.command, start.command[1:], strict=False)
        assert ("--seeds", "1") in zip(start.command, start.command[1:], strict=False)
        watch = app.main.view("watch")
        await wait_for(pilot, lambda: watch.following is not None, WAIT_S, "a member's folder")
        run = watch.following
        assert run.meta()["sweep"] == "scratch-lr-sweep"
        await wait_for(pilot, lambda: run.steps(), WAIT_S, "a step")
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: start.exit_code() is not None, WAIT_S, "the sweep's end")
        assert start.exit_code() == 130

    drive(app, scenario)
    (run,) = list_runs(runs_dir)  # the first member, stopped: the sweep went no further
    assert run.status() == "interrupted"
    assert "interrupted" in (run.path / detached.LOG_NAME).read_text()


def test_a_detached_start_refused_by_the_child_says_why_in_the_watch_view(tiny_data, tmp_path):
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs")

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        start = app.detached.start_run("scratch", {"lr": "-1"})  # the child's bad input
        watch = app.main.view("watch")
        await wait_for(pilot, lambda: not app.detached.children, WAIT_S, "the child's end")
        # the watcher thread lets go of the child, then posts its end to the UI: wait for that
        ended = lambda: watch.view.status != "preparing"  # noqa: E731
        await wait_for(pilot, ended, WAIT_S, "the end shown in Watch")
        assert start.exit_code() == 2 and watch.view.status == "failed"
        assert "exit 2" in watch.view.log[-1] and "lr" in watch.view.log[-1]

    drive(app, scenario)
    assert list_runs(tmp_path / "runs") == []


# A stand-in trainer: counts the SIGINTs it gets and prints the count when SIGTERM ends it.
SIGINT_COUNTER = """\
import signal, sys
count = 0
def on_int(signum, frame):
    global count
    count += 1
def on_term(signum, frame):
    print(count, flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, on_int)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    signal.pause()
"""


def test_a_second_stop_of_a_followed_run_sends_no_second_sigint(tiny_data, tmp_path):
    # `tui-trainer run` takes a second SIGINT as its hard abort (the run would read crashed):
    # Stop pressed again while the run is still stopping must not send one.
    runs_dir = tmp_path / "runs"
    trainer = subprocess.Popen(
        [sys.executable, "-c", SIGINT_COUNTER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert trainer.stdout.readline().strip() == "ready"
        holder = {"host": socket.gethostname(), "pid": trainer.pid}
        fake_run(runs_dir, "20260101-000000-scratch", "scratch", "running", holder)
        run = Run(runs_dir / "20260101-000000-scratch")
        write_json_atomic(run.owner_path, {**holder, **process_identity(trainer.pid)})
        assert run.status() == "running"
        app = make_app(data_dir=tiny_data, runs_dir=runs_dir)

        async def scenario(pilot):
            await pilot.press("2")
            watch = app.main.view("watch")
            watch.follow(run)
            await pilot.pause()
            stop = watch.query_one("#stop")
            assert stop.display and not stop.has_class("-stopping")
            await pilot.press("s")
            assert type(app.screen).__name__ == "ConfirmScreen"
            await pilot.press("y")
            await pilot.pause()
            assert stop.has_class("-stopping") and "Stopping" in str(stop.label)
            await pilot.press("s")  # the run goes on for now: Stop is still there
            if type(app.screen).__name__ == "ConfirmScreen":
                await pilot.press("y")
            await pilot.pause()
            assert any("already stopping (SIGINT sent)" in n for n in notices(app))

        drive(app, scenario)
    finally:
        trainer.send_signal(signal.SIGTERM)  # handled after any SIGINT sent before it
        counted = trainer.communicate(timeout=30)[0]
    assert counted.split() == ["1"]


TINY_PRESET = """\
model = "resnet18"
image_size = 32
resize = 36
batch_size = 8
epochs = 50
lr = 0.01
precision = "fp32"
device = "cpu"
threads = 1
"""


def test_a_detached_sweep_that_resumes_its_member_is_followed_into_that_folder(
    tiny_data, tmp_path, monkeypatch
):
    # A sweep resumes its interrupted members in their own folders: config.json there is as
    # old as the member's first start, and only summary.json says this child trains it now.
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "tiny.toml").write_text(TINY_PRESET)
    (presets / "tiny-one.toml").write_text('base = "tiny"\n[grid]\nlr = [0.01]\n')
    monkeypatch.setenv("TUI_TRAINER_PRESETS", str(presets))
    runs_dir = tmp_path / "runs"
    command = detached.sweep_command(
        "tiny-one", {}, seeds=None, data_dir=tiny_data, runs_dir=runs_dir
    )

    def checkpointed(start):
        run = start.find_run()  # a fresh member's folder, found as before
        return run if run is not None and run.last_path.exists() else None

    first = detached.spawn(command, runs_dir, "sweep tiny-one")
    try:
        run = wait_until(lambda: checkpointed(first), "the member's first epoch", first.process)
        first.process.send_signal(signal.SIGINT)
        assert first.process.wait(WAIT_S) == 130
    finally:
        first.process.kill()
        first.process.wait()
    assert run.status() == "interrupted"
    # as if it had been interrupted an hour ago
    hour_ago = time.time() - 3600
    os.utime(run.config_path, (hour_ago, hour_ago))
    write_json_atomic(run.summary_path, {**run.summary(), "started_at": hour_ago})

    again = detached.spawn(command, runs_dir, "sweep tiny-one")
    try:
        wait_until(lambda: again.find_run() == run, "the resume", again.process)
        assert run.summary()["pid"] == again.pid and run.summary()["resumes"] == 1
        again.process.send_signal(signal.SIGINT)
        assert again.process.wait(WAIT_S) == 130
    finally:
        again.process.kill()
        again.process.wait()
    assert again.find_run() == run  # its end still names this child


NOTE_LAUNCH = """\
import sys, time
from tui_trainer.runs import detached
for run_id in sys.argv[1:]:
    detached.note_launch(detached.own_launch_record(), run_id)
print("noted", flush=True)
time.sleep(60)
"""


def test_a_detached_start_finds_the_run_its_child_names_last_in_its_launch_record(tmp_path):
    runs_dir = tmp_path / "runs"
    fake_run(runs_dir, "20260101-000000-scratch", "scratch", "completed", {})
    fake_run(runs_dir, "20260101-010000-scratch", "scratch", "running", {})
    idle = detached.spawn([sys.executable, "-c", "import time; time.sleep(60)"], runs_dir, "x")
    busy = detached.spawn(
        [sys.executable, "-c", NOTE_LAUNCH, "20260101-000000-scratch", "20260101-010000-scratch"],
        runs_dir,
        "y",
    )
    try:
        assert idle.find_run() is None  # no run started yet: no record
        wait_until(lambda: "noted" in busy.log_path.read_text(), "the child's record", busy.process)
        assert busy.find_run().id == "20260101-010000-scratch"  # the last it started
        assert read_json(busy.launch_path)["pid"] == busy.pid
        for planted in ("../20260101-000000-scratch", "..", "20260101-020000-none", ""):
            write_json_atomic(busy.launch_path, {"run_id": planted, "pid": busy.pid})
            assert busy.find_run() is None  # a path out, or no run folder there
    finally:
        for start in (idle, busy):
            start.process.kill()
            start.process.wait()
