"""Who holds a run folder (runs/lock.py): a reused pid is not the run, another host's silent
heartbeat goes `stale`, the heartbeat beats during long phases and stops with the run, and two
resumes of one run never both train it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.support.paths import REPO
from tests.support.processes import small_config, subprocess_env
from tests.support.runs import invoke
from tui_trainer.errors import UserError
from tui_trainer.files import write_json_atomic
from tui_trainer.runs import lock
from tui_trainer.runs.launch import resume_run, start_run
from tui_trainer.runs.resume import check_resumable
from tui_trainer.runs.status import RESUMABLE
from tui_trainer.runs.store import Run
from tui_trainer.studies.sweeps import RERUN_STATUSES

ELSEWHERE = "another-host.example"


def _running_run(runs_dir, pid, host):
    """A run folder whose summary says `running` under `pid` on `host`."""
    folder = runs_dir / "20250101-000000-held"
    folder.mkdir(parents=True)
    write_json_atomic(folder / "config.json", {"config": small_config().to_dict()})
    write_json_atomic(folder / "summary.json", {"status": "running", "pid": pid, "host": host})
    return Run(folder)


def _interrupted_run(runs_dir, data_dir, **config):
    folder = runs_dir / "20250101-000000-stopped"
    folder.mkdir(parents=True)
    meta = {"config": small_config(**config).to_dict(), "preset": "scratch"}
    write_json_atomic(folder / "config.json", {**meta, "data_dir": str(data_dir)})
    write_json_atomic(folder / "summary.json", {"status": "interrupted", "epochs_done": 0})
    return Run(folder)


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


# --- this host: the very process, not its pid ----------------------------------------------


def test_a_dead_runs_pid_reused_by_another_process_is_not_the_run(tmp_path, sleeper):
    host = socket.gethostname()
    run = _running_run(tmp_path, sleeper.pid, host)
    assert run.status() == "running"  # no owner.json (an older run): the pid check alone

    identity = lock.process_identity(sleeper.pid)
    assert identity and identity["start_ticks"] > 0 and identity["boot_id"]
    owner = {"host": host, "pid": sleeper.pid, **identity}
    write_json_atomic(run.owner_path, {**owner, "start_ticks": identity["start_ticks"] - 1})
    assert run.status() == "crashed"  # the pid is alive, but it is a later process
    write_json_atomic(run.owner_path, {**owner, "boot_id": "0" * 36})
    assert run.status() == "crashed"  # same ticks, another boot
    write_json_atomic(run.owner_path, owner)
    assert run.status() == "running"

    sleeper.kill()
    sleeper.wait()
    assert run.status() == "crashed"
    check_resumable(run)  # crashed resumes


def test_a_process_we_may_not_signal_is_alive(tmp_path, monkeypatch):
    def denied(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(lock.os, "kill", denied)
    monkeypatch.setattr(lock, "_proc_start", lambda pid: {})  # hidepid: /proc tells nothing
    assert lock.process_identity(4242) == {}
    host = socket.gethostname()
    run = _running_run(tmp_path, 4242, host)
    write_json_atomic(run.owner_path, {"host": host, "pid": 4242, "start_ticks": 7})
    assert run.status() == "running"


def test_a_live_holder_named_by_owner_json_holds_the_folder_whatever_the_summary_says(tmp_path):
    # a resume that has locked the folder but not yet rewound it: the summary still names the
    # dead process, owner.json the live one. The run is held (running): a sweep must not rerun
    # it and the console must not delete it while the resume prepares.
    run = _running_run(tmp_path, 2**22 + 12345, socket.gethostname())
    write_json_atomic(run.owner_path, lock.this_process())
    assert run.status() == "running"
    # the same owner.json left by a process that has died since: the summary's pid decides
    write_json_atomic(run.owner_path, {**lock.this_process(), "start_ticks": -1})
    assert run.status() == "crashed"


# --- another host: the heartbeat, as seen from here -----------------------------------------


def _remote_owner(beat, interval=0.05):
    return {"host": ELSEWHERE, "pid": 77, "start_ticks": 5, "interval": interval, "beat": beat}


def test_a_silent_heartbeat_from_another_host_goes_stale(tmp_path):
    run = _running_run(tmp_path, 77, ELSEWHERE)
    write_json_atomic(run.owner_path, _remote_owner(beat=3))
    assert run.status() == "running"  # first seen from here: fresh
    time.sleep(0.05)
    assert run.status() == "running"  # one interval is not enough
    time.sleep(0.15)  # three intervals of 0.05 s with the same beat
    assert run.status() == "stale"
    assert run.status() in RESUMABLE and "stale" in RERUN_STATUSES
    check_resumable(run)

    write_json_atomic(run.owner_path, _remote_owner(beat=4))  # it beats again
    assert run.status() == "running"
    seen = json.loads((tmp_path / "cache" / lock.SEEN_FILE).read_text())  # $TUI_TRAINER_CACHE
    assert seen[lock.seen_key(run.path)]["beat"] == 4


def test_a_beating_heartbeat_from_another_host_stays_running(tmp_path):
    run = _running_run(tmp_path, 77, ELSEWHERE)
    for beat in range(12):  # 0.36 s in all: 7 intervals, but never 3 without a change
        write_json_atomic(run.owner_path, _remote_owner(beat))
        assert run.status() == "running"
        time.sleep(0.03)
    with pytest.raises(UserError, match="is running"):
        check_resumable(run)


def test_a_remote_claim_taken_over_is_judged_afresh(tmp_path):
    run = _running_run(tmp_path, 77, ELSEWHERE)
    write_json_atomic(run.owner_path, _remote_owner(beat=0))
    assert run.status() == "running"
    time.sleep(0.2)
    assert run.status() == "stale"
    # another process on that host takes it over with the same beat count: not stale yet
    write_json_atomic(run.summary_path, {"status": "running", "pid": 78, "host": ELSEWHERE})
    write_json_atomic(run.owner_path, {**_remote_owner(beat=0), "pid": 78})
    assert run.status() == "running"


# --- the heartbeat thread --------------------------------------------------------------------


def _beats(run):
    return lock.read_owner(run.path).get("beat")


def test_the_heartbeat_beats_during_a_long_epoch_and_stops_with_the_run(
    tiny_data, tmp_path, monkeypatch
):
    from tui_trainer.train import engine

    monkeypatch.setenv(lock.HEARTBEAT_ENV, "0.05")
    real, seen = engine.train_one_epoch, []

    def slow_epoch(loop, cfg, state, epoch, emit, stop):
        run = Run(next((tmp_path / "runs").iterdir()))
        seen.append((_beats(run), run.status()))
        time.sleep(0.4)  # a long CPU epoch: no event, no summary write for 8 intervals
        seen.append((_beats(run), run.status()))
        return real(loop, cfg, state, epoch, emit, stop)

    monkeypatch.setattr(engine, "train_one_epoch", slow_epoch)
    cfg = small_config(epochs=1)
    run, ended = start_run(
        cfg, preset="test", overrides={}, data_dir=tiny_data, runs_dir=tmp_path / "runs"
    )
    assert ended.status == "completed"
    (before, status), (after, _) = seen
    assert status == "running" and after >= before + 3
    assert not [t for t in threading.enumerate() if t.name == lock.THREAD_NAME]
    assert not run.owner_path.exists()  # a clean end: no holder left
    assert (run.path / lock.LOCK_FILE).exists()
    with lock.hold(run.path, "run"):  # and the lock is free
        assert lock.read_owner(run.path)["pid"] == os.getpid()


def test_the_heartbeat_beats_while_a_resume_decodes(tiny_data, tmp_path, monkeypatch):
    from tui_trainer.data import decode

    monkeypatch.setenv(lock.HEARTBEAT_ENV, "0.05")
    run = _interrupted_run(tmp_path, tiny_data, epochs=1)
    real, beats = decode.decode_image, []

    def slow_decode(path, resize, size):
        beats.append(_beats(run))
        time.sleep(0.02)  # 38 images: about 0.8 s of decoding
        return real(path, resize, size)

    monkeypatch.setattr(decode, "decode_image", slow_decode)
    again, ended = resume_run(run.id, runs_dir=tmp_path)
    assert ended.status == "completed"
    assert beats[0] is not None and beats[-1] >= beats[0] + 5
    assert not [t for t in threading.enumerate() if t.name == lock.THREAD_NAME]
    assert not run.owner_path.exists()


# --- two resumes of one run ------------------------------------------------------------------


def test_a_resume_of_a_run_another_process_holds_is_refused(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"  # $TUI_TRAINER_RUNS in the tests
    run = _interrupted_run(runs_dir, tiny_data)
    holder = threading.Event()
    release = threading.Event()

    def hold():  # another "process": its own lock object, its own descriptor
        with lock.hold(run.path, f"run {run.id}"):
            holder.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holder.wait(10)
        before = run.summary_path.read_bytes()
        who = f"held by pid {os.getpid()} on {socket.gethostname()}"
        with pytest.raises(UserError, match=f"run {run.id} is {who}: wait for it or stop it"):
            resume_run(run.id, runs_dir=runs_dir)
        result = invoke("run", "--resume", run.id)
        assert result.exit_code == 2
        assert who in result.output and len(result.output.strip().splitlines()) == 1
        assert run.summary_path.read_bytes() == before
    finally:
        release.set()
        thread.join()
    assert not run.owner_path.exists()


def test_two_resumes_at_once_one_trains_the_other_exits_2(tiny_data, tmp_path):
    run = _interrupted_run(tmp_path / "runs", tiny_data, epochs=3)
    start = time.time() + 4.0  # both are past their imports by then
    script = (
        "import sys, time; time.sleep(max(0.0, float(sys.argv[1]) - time.time()));"
        "from tui_trainer.cli.app import main; sys.argv[1:] = sys.argv[2:]; main()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(start), "run", "--resume", run.id],
            env=subprocess_env(TUI_TRAINER_RUNS=tmp_path / "runs"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted((p.returncode, out) for p, out in zip(procs, outputs, strict=True))
    assert [c for c, _ in codes] == [0, 2], outputs
    winner = next(p for p in procs if p.returncode == 0)
    assert codes[1][1].strip().splitlines() == [
        f"error: run {run.id} is held by pid {winner.pid} on {socket.gethostname()}: "
        "wait for it or stop it"
    ]
    summary = run.summary()
    assert summary["status"] == "completed" and summary["resumes"] == 1
    assert summary["pid"] == winner.pid


def test_a_hold_left_by_an_exception_keeps_owner_json_once_the_run_is_its_own(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    previous = '{"host": "elsewhere", "pid": 1}\n'
    (folder / lock.OWNER_FILE).write_text(previous)
    with pytest.raises(KeyboardInterrupt), lock.hold(folder, "run"):
        raise KeyboardInterrupt  # before training: the folder as it was
    assert (folder / lock.OWNER_FILE).read_text() == previous
    with pytest.raises(KeyboardInterrupt), lock.hold(folder, "run") as claim:
        claim.started = True
        raise KeyboardInterrupt  # during training: the holder stays for readers to judge
    assert lock.read_owner(folder)["pid"] == os.getpid()
    assert not [t for t in threading.enumerate() if t.name == lock.THREAD_NAME]
