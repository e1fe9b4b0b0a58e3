"""The sweep panel shows members that other processes train, from their claims, and follows
them live: a claim of another host reads `running · HOST`; a claim whose holder died reads as
what the next sweep does (crashed or stale: rerun); enter on a running member follows its run
in the Watch view. Against real processes: two `tui-trainer sweep` on one runs folder, watched
by the console from pending through running elsewhere to completed; a detached start finds the
runs its child's processes train (as `--parallel` members); end to end, Start "2 in parallel"
trains a tiny sweep to completion, followed by the console. A snapshot of the panel with
members running on other hosts."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.processes import spawn_cli
from tests.support.tui import drive, notices, study_runs, wait_for, write_fixture_run
from tui_trainer.events import RunStatus
from tui_trainer.files import read_json, write_json_atomic
from tui_trainer.runs import detached
from tui_trainer.runs.claims import claim_folder
from tui_trainer.runs.owner import OWNER_FILE
from tui_trainer.studies import sweep_file, sweeps
from tui_trainer.tui.app import make_app

MISSING_DATA = Path("/nonexistent/caltech101")
SWEEP = "scratch-lr-sweep"
OTHER_HOST = "gpu-box-2"


def claim(runs_dir: Path, member: sweep_file.SweepMember, silent_s: float = 0, **owner) -> Path:
    """A claim's owner.json as a sweep process writes it (runs/claims.py), last rewritten
    `silent_s` ago (fresh by default)."""
    folder = claim_folder(runs_dir, sweeps.member_key(member))
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    fields = {"host": OTHER_HOST, "pid": 4242, "started_at": now, "interval": 30.0}
    fields |= {"beat": 1, "beat_at": now, "sweep": SWEEP, "member": member.name, "run_id": None}
    write_json_atomic(folder / OWNER_FILE, fields | owner)
    os.utime(folder / OWNER_FILE, (now - silent_s, now - silent_s))
    return folder


def dead_pid() -> int:
    """The pid of a process that has ended (with create_time=1 no process reusing it matches)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def member_named(name: str) -> sweep_file.SweepMember:
    return next(m for m in sweep_file.load_sweep(SWEEP).members if m.name == name)


FIRST = "scratch-lr0.001-e30-s20-g0.1"
SECOND = "scratch-lr0.005-e20-s10-g0.1"
THIRD = "scratch-lr0.01-e30-s15-g0.1"


def app_on(runs_dir: Path):
    return make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)


async def show_sweep(pilot, name: str = SWEEP):
    app = pilot.app
    await wait_for(pilot, lambda: app.data_checked, what="the data check")
    app.main.view("launch").pick(f"sweep:{name}")
    await pilot.pause()
    return app.main.view("launch").sweep_panel


def row_of(panel, name: str):
    return next(row for row in panel.states if row.member.name == name)


def test_a_member_claimed_on_another_host_reads_running_there(tmp_path):
    runs_dir = tmp_path / "runs"
    study_runs(runs_dir)  # one member of six completed
    claim(runs_dir, member_named(FIRST))
    app = app_on(runs_dir)

    async def scenario(pilot):
        panel = await show_sweep(pilot)
        first = row_of(panel, FIRST)
        assert first.status == RunStatus.RUNNING and first.elsewhere
        assert str(first.label()) == f"▶ running · {OTHER_HOST}"
        assert panel.has_class("-elsewhere")
        assert f"{FIRST} on {OTHER_HOST}" in str(panel.query_one("#sweep-elsewhere").render())
        counts = panel.counts_line()
        assert "1 done · 1 running elsewhere" in counts and "4 to run" in counts
        assert FIRST not in [m.name for m in panel.to_run()]  # Start leaves it to that process

        await pilot.press("escape", "enter")  # into the members; enter on the first
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.current == "launch"  # no run folder yet: nothing to follow
        assert f"{FIRST} has no run folder yet (claimed by pid 4242 on {OTHER_HOST})." in notices(
            app
        )

        # its run folder appears: the panel sees it by itself, enter follows it
        run = write_fixture_run(
            runs_dir, "20240302-100000-lr0.001", "scratch", {"lr": 0.001}, 1, "interrupted", None
        )
        claim(runs_dir, member_named(FIRST), run_id=run.id, beat=2)
        await wait_for(pilot, lambda: row_of(panel, FIRST).run_id == run.id, what="the refresh")
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.current == "watch"
        assert app.main.view("watch").following.id == run.id

    drive(app, scenario, size=(120, 36))


def test_a_claim_left_by_a_dead_process_reads_as_what_the_sweep_will_do(tmp_path):
    runs_dir = tmp_path / "runs"
    study_runs(runs_dir)
    here = socket.gethostname()
    claim(runs_dir, member_named(FIRST), host=here, pid=dead_pid(), create_time=1.0)
    claim(runs_dir, member_named(SECOND), host="gpu-box-3", silent_s=3600)  # beats no more
    app = app_on(runs_dir)

    async def scenario(pilot):
        panel = await show_sweep(pilot)
        first = row_of(panel, FIRST)
        assert first.status == RunStatus.CRASHED and not first.elsewhere
        assert str(first.label()).startswith("✗ crashed, reruns · was ")
        assert FIRST in [m.name for m in panel.to_run()]  # the next sweep reruns it
        # the other host's owner.json was not rewritten for an hour: stale
        await wait_for(pilot, lambda: row_of(panel, SECOND).status == RunStatus.STALE, what="stale")
        assert str(row_of(panel, SECOND).label()).endswith("reruns · was gpu-box-3")
        assert not panel.has_class("-elsewhere")
        assert "0 running elsewhere" not in panel.counts_line()

    drive(app, scenario, size=(120, 36))


def test_the_panel_reads_nothing_while_hidden_and_catches_up_when_shown(tmp_path):
    runs_dir = tmp_path / "runs"
    study_runs(runs_dir)
    app = app_on(runs_dir)

    async def scenario(pilot):
        panel = await show_sweep(pilot)
        assert row_of(panel, FIRST).status == "pending"
        await pilot.press("2")  # the Watch view: the panel is off screen
        claim(runs_dir, member_named(FIRST))
        panel.reread()  # what the timer does
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert row_of(panel, FIRST).status == "pending"  # not reread while hidden
        await pilot.press("1")
        await wait_for(pilot, lambda: row_of(panel, FIRST).elsewhere, what="the reread")

    drive(app, scenario, size=(120, 36))


def test_snapshot_a_sweep_member_running_on_another_host(snap_compare, tmp_path):
    runs_dir = tmp_path / "runs"
    study_runs(runs_dir)
    claim(runs_dir, member_named(FIRST))
    claim(runs_dir, member_named(THIRD), host="gpu-box-3", pid=77)

    async def run_before(pilot):
        panel = await show_sweep(pilot)
        pilot.app.clear_notifications()
        panel.query_one("#sweep-members").focus()
        await pilot.pause()

    assert snap_compare(app_on(runs_dir), terminal_size=(120, 36), run_before=run_before)


TINY_PRESET = """\
model = "resnet18"
image_size = 32
resize = 36
batch_size = 8
epochs = 2
lr = 0.01
step_size = 1
precision = "fp32"
device = "cpu"
threads = 1
"""
TWO = 'base = "tiny"\n[grid]\nlr = [0.01, 0.02]\n'


@pytest.fixture
def tiny_sweep(tmp_path, monkeypatch):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_PRESET)
    (folder / "tiny-two.toml").write_text(TWO)
    monkeypatch.setenv("TUI_TRAINER_PRESETS", str(folder))
    monkeypatch.setenv("TUI_TRAINER_HEARTBEAT", "0.3")
    return "tiny-two"


def test_the_panel_follows_two_sweep_processes_live(tiny_sweep, tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    args = ["sweep", tiny_sweep, "--data", tiny_data, "--runs-dir", runs_dir]
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir)
    procs: list[subprocess.Popen] = []
    seen: set[str] = set()  # every state a member was shown in

    def record(panel) -> list:
        seen.update(str(row.label()) for row in panel.states)
        return panel.states

    async def scenario(pilot):
        panel = await show_sweep(pilot, tiny_sweep)
        assert [row.status for row in panel.states] == ["pending", "pending"]
        procs.extend(spawn_cli(*args) for _ in range(2))
        pids = {p.pid for p in procs}

        def one_elsewhere() -> bool:
            return any(row.elsewhere and row.holder.pid in pids for row in record(panel))

        def all_completed() -> bool:
            return all(row.status == RunStatus.COMPLETED for row in record(panel))

        await wait_for(pilot, one_elsewhere, timeout=400, what="a member running elsewhere")
        running = next(row for row in panel.states if row.elsewhere)
        assert (
            str(running.label()) == f"▶ running · {socket.gethostname()} pid {running.holder.pid}"
        )
        assert panel.has_class("-elsewhere") and "running elsewhere" in panel.counts_line()
        await wait_for(pilot, all_completed, timeout=600, what="completion")
        assert not panel.has_class("-elsewhere")
        assert panel.counts_line().startswith("2 members · 2 done · 0 failed · 0 to run")
        assert all(row.test_acc is not None for row in panel.states)

    try:
        drive(app, scenario, size=(120, 36))
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        # 3: the process had nothing left while the other still trained its member; the last
        # to end saw every member completed
        codes = [p.returncode for p in procs]
        assert set(codes) <= {0, 3} and 0 in codes, outputs
    finally:
        for p in procs:
            p.kill()
    assert "· remaining" in seen and any(s.startswith("▶ running · ") for s in seen)


def test_a_detached_start_finds_the_runs_its_child_processes_train(tiny_sweep, tiny_data, tmp_path):
    """`sweep --parallel N` trains its members in processes of its own: the console finds their
    run folders through the launch record those processes rewrite (they inherit its path). A
    shell stands for that parent here: it runs `tui-trainer run` as its child, not in its place
    (the `; exit` keeps it from exec'ing)."""
    runs_dir = tmp_path / "runs"
    command = detached.run_command("tiny", {}, data_dir=tiny_data, runs_dir=runs_dir)
    start = detached.spawn(["bash", "-c", f"{shlex.join(command)}; exit $?"], runs_dir, "tiny")
    try:
        deadline = time.monotonic() + 400
        while (run := start.find_run()) is None:
            assert start.exit_code() is None and time.monotonic() < deadline, start.log_tail()
            time.sleep(0.1)
        trainer = run.summary()["pid"]
        assert trainer != start.pid and read_json(start.launch_path)["pid"] == trainer
        assert start.process.wait(timeout=400) == 0, start.log_tail()
    finally:
        with contextlib.suppress(ProcessLookupError):  # its session: the shell and its child
            os.killpg(start.pid, signal.SIGKILL)
        start.process.wait()
    assert run.status() == "completed"


def test_start_n_in_parallel_trains_the_sweep_and_the_console_follows_it(
    tiny_sweep, tiny_data, tmp_path
):
    """End to end: Start, "2 in parallel", enter: a detached `sweep --parallel 2` trains both
    members in child processes; the Watch view follows a member's run, and back on the Launch
    view the panel shows the members running there, then done."""
    # members of a few seconds more: the panel, shown only after the Watch view found a member's
    # run, must still catch one training when the machine is loaded (2 epochs could end first)
    preset = tmp_path / "presets" / "tiny.toml"
    preset.write_text(TINY_PRESET.replace("epochs = 2", "epochs = 6"))
    runs_dir = tmp_path / "runs"
    app = make_app(data_dir=tiny_data, runs_dir=runs_dir)
    seen: set[str] = set()
    started = []  # the detached child, ended below if the test fails before it does

    def labels(panel) -> list:
        seen.update(str(row.label()) for row in panel.states)
        return panel.states

    async def scenario(pilot):
        panel = await show_sweep(pilot, tiny_sweep)
        await pilot.press("ctrl+s")
        assert app.screen.count == 2  # the tiny preset trains on the CPU: two at once
        await pilot.press("+", "enter")  # + highlights the parallel row (2 members: stays 2)
        await pilot.pause()
        (start,) = app.detached.children.values()
        started.append(start)
        assert start.command[start.command.index("--parallel") + 1] == "2"
        watch = app.main.view("watch")
        assert app.main.current == "watch"
        await wait_for(pilot, lambda: watch.following is not None, 600, "a member's run")
        assert watch.following.meta()["sweep_member"].startswith("tiny-lr=")
        assert watch.following.summary()["pid"] != start.pid  # a member's own process
        await pilot.press("1")
        await wait_for(
            pilot,
            lambda: all(row.status == RunStatus.COMPLETED for row in labels(panel)),
            600,
            "both members completed",
        )
        await wait_for(pilot, lambda: start.exit_code() is not None, 120, "the child's end")
        assert start.exit_code() == 0, start.log_tail()

    try:
        drive(app, scenario, size=(120, 36))
    finally:
        for start in started:  # its member processes get SIGHUP when it dies (PDEATHSIG)
            if start.exit_code() is None:
                start.process.kill()
                start.process.wait()
    assert any(label.startswith("▶ running · ") for label in seen), seen
    runs = sweeps.member_states(sweep_file.load_sweep(tiny_sweep), runs_dir)
    assert [s.status for s in runs] == ["completed", "completed"]
