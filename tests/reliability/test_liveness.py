"""Who owns a run folder (runs/owner.py): a reused pid is not the run, another host's owner
whose owner.json is not rewritten goes `stale` by one rule wherever it is judged, reading changes
no file, the heartbeat beats during long phases and stops with the run, and two resumes of one
run never both train it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tests.support.paths import REPO
from tests.support.processes import small_config, subprocess_env
from tests.support.runs import invoke
from tui_trainer.errors import UserError
from tui_trainer.files import read_json, write_json_atomic
from tui_trainer.runs import claims, detached, owner
from tui_trainer.runs.launch import resume_run, start_run
from tui_trainer.runs.owner import OWNER_FILE, this_process
from tui_trainer.runs.resume import check_resumable
from tui_trainer.runs.status import RESUMABLE
from tui_trainer.runs.store import Run
from tui_trainer.studies.sweeps import RERUN_STATUSES

ELSEWHERE = "another-host.example"
HOUR = 3600.0


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


def _write_owner(folder, silent_s=0.0, **fields):
    """owner.json as its holder writes it, last rewritten `silent_s` ago."""
    path = folder / OWNER_FILE
    write_json_atomic(path, fields)
    when = time.time() - silent_s
    os.utime(path, (when, when))


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

    created = psutil.Process(sleeper.pid).create_time()
    write_json_atomic(
        run.owner_path, {"host": host, "pid": sleeper.pid, "create_time": created - 60}
    )
    assert run.status() == "crashed"  # the pid is alive, but it is a later process
    write_json_atomic(run.owner_path, {"host": host, "pid": sleeper.pid, "create_time": created})
    assert run.status() == "running"

    sleeper.kill()
    sleeper.wait()
    assert run.status() == "crashed"
    check_resumable(run)  # crashed resumes


class _Reused:
    """psutil.Process for a pid that a later process (created at 2000.0) has taken."""

    def __init__(self, pid):
        self.pid = pid

    def create_time(self):
        return 2000.0


def test_a_reused_pid_is_told_apart_by_psutil_create_time(tmp_path, monkeypatch):
    monkeypatch.setattr(owner.psutil, "Process", _Reused)
    host = socket.gethostname()
    run = _running_run(tmp_path, 4242, host)
    claim = claims.claim_folder(tmp_path, "key")
    claim.mkdir(parents=True)
    for folder in (run.path, claim):
        _write_owner(folder, host=host, pid=4242, create_time=1000.0, sweep="s", member="m")
    assert run.status() == "crashed"
    assert claims.read_holder(tmp_path, "key").status == "crashed"
    assert not detached.stop_target(run).stoppable  # a later process's pid is never signalled
    _write_owner(run.path, host=host, pid=4242, create_time=2000.5)  # within the tolerance
    assert run.status() == "running" and detached.stop_target(run).stoppable


def test_a_process_hidden_from_us_is_alive(tmp_path, monkeypatch):
    def hidden(pid):  # hidepid: no /proc entry, but signal 0 finds it
        raise psutil.NoSuchProcess(pid)

    monkeypatch.setattr(owner.psutil, "Process", hidden)
    monkeypatch.setattr(owner.psutil, "pid_exists", lambda pid: True)
    assert owner.process_identity(4242) == {}
    host = socket.gethostname()
    run = _running_run(tmp_path, 4242, host)
    write_json_atomic(run.owner_path, {"host": host, "pid": 4242, "create_time": 7.0})
    assert run.status() == "running"
    monkeypatch.setattr(owner.psutil, "pid_exists", lambda pid: False)
    assert run.status() == "crashed"


def test_a_live_holder_named_by_owner_json_holds_the_folder_whatever_the_summary_says(tmp_path):
    # a resume that has locked the folder but not yet rewound it: the summary still names the
    # dead process, owner.json the live one. The run is held (running): a sweep must not rerun
    # it and the console must not delete it while the resume prepares.
    run = _running_run(tmp_path, 2**22 + 12345, socket.gethostname())
    write_json_atomic(run.owner_path, this_process())
    assert run.status() == "running"
    # the same owner.json left by a process that has died since: the summary's pid decides
    write_json_atomic(run.owner_path, {**this_process(), "create_time": 1.0})
    assert run.status() == "crashed"


# --- another host: owner.json's modification time ------------------------------------------


def _remote_owner(pid=77):
    return {"host": ELSEWHERE, "pid": pid, "interval": 0.05, "beat": 3, "sweep": "s"}


def test_another_hosts_silent_owner_goes_stale_and_a_rewrite_makes_it_running(tmp_path):
    run = _running_run(tmp_path, 77, ELSEWHERE)
    # three intervals of 0.05 s have passed, but the two clocks may differ by CLOCK_SKEW_S
    _write_owner(run.path, silent_s=1.0, **_remote_owner())
    assert run.status() == "running"
    with pytest.raises(UserError, match="is running"):
        check_resumable(run)
    _write_owner(run.path, silent_s=owner.CLOCK_SKEW_S + 1.0, **_remote_owner())
    assert run.status() == "stale"
    assert run.status() in RESUMABLE and "stale" in RERUN_STATUSES
    check_resumable(run)
    # another process on that host takes it over: judged by its own rewrite
    write_json_atomic(run.summary_path, {"status": "running", "pid": 78, "host": ELSEWHERE})
    _write_owner(run.path, **_remote_owner(pid=78))
    assert run.status() == "running"


def _judged_three_ways(tmp_path, silent_s):
    """One remote owner.json, as a run folder, a member claim and a detached start's stop see
    it."""
    run = _running_run(tmp_path / "runs", 77, ELSEWHERE)
    claim = claims.claim_folder(tmp_path / "runs", "key")
    claim.mkdir(parents=True)
    for folder in (run.path, claim):
        _write_owner(folder, silent_s=silent_s, **_remote_owner())
    holder = claims.read_holder(tmp_path / "runs", "key")
    return run.status(), holder.status, detached.stop_target(run).status


@pytest.mark.parametrize(("silent_s", "judged"), [(0.0, "running"), (HOUR, "stale")])
def test_one_rule_judges_a_remote_owner_of_a_run_a_claim_and_a_detached_start(
    tmp_path, silent_s, judged
):
    assert _judged_three_ways(tmp_path, silent_s) == (judged, judged, judged)
    taken = claims.take_claim(tmp_path / "runs", "key", sweep="s", member="mine")
    if judged == "running":  # a live remote owner keeps its claim; a stale one is taken over
        assert isinstance(taken, owner.Owner) and taken.host == ELSEWHERE and taken.live
    else:
        assert isinstance(taken, claims.MemberClaim)
        taken.release()


def _snapshot(*folders):
    return {
        str(path): path.stat().st_mtime_ns
        for folder in folders
        if folder.exists()
        for path in [folder, *folder.rglob("*")]
    }


def test_reading_a_runs_status_writes_nothing(tmp_path, sleeper):
    runs_dir, cache = tmp_path / "runs", tmp_path / "cache"  # $TUI_TRAINER_CACHE
    cache.mkdir()
    host = socket.gethostname()
    remote = _running_run(runs_dir / "a", 77, ELSEWHERE)
    _write_owner(remote.path, silent_s=10.0, **_remote_owner())
    dead = _running_run(runs_dir / "b", 2**22 + 1, host)
    _write_owner(dead.path, silent_s=10.0, host=host, pid=2**22 + 1, create_time=1.0)
    live = _running_run(runs_dir / "c", sleeper.pid, host)
    identity = {"create_time": psutil.Process(sleeper.pid).create_time()}
    _write_owner(live.path, silent_s=10.0, host=host, pid=sleeper.pid, **identity)
    before = _snapshot(runs_dir, cache)
    assert [r.status() for r in (remote, dead, live)] == ["running", "crashed", "running"]
    assert _snapshot(runs_dir, cache) == before


# --- the heartbeat thread --------------------------------------------------------------------


def _beats(run):
    return read_json(run.owner_path).get("beat")


def test_the_heartbeat_beats_during_a_long_epoch_and_stops_with_the_run(
    tiny_data, tmp_path, monkeypatch
):
    from tui_trainer.train import engine

    monkeypatch.setenv(owner.HEARTBEAT_ENV, "0.05")
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
    assert not [t for t in threading.enumerate() if t.name == owner.THREAD_NAME]
    assert not run.owner_path.exists()  # a clean end: no holder left
    assert (run.path / owner.LOCK_FILE).exists()
    with owner.hold(run.path, "run"):  # and the lock is free
        assert read_json(run.owner_path)["pid"] == os.getpid()


def test_the_heartbeat_beats_while_a_resume_decodes(tiny_data, tmp_path, monkeypatch):
    from tui_trainer.data import decode

    monkeypatch.setenv(owner.HEARTBEAT_ENV, "0.05")
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
    assert not [t for t in threading.enumerate() if t.name == owner.THREAD_NAME]
    assert not run.owner_path.exists()


# --- two resumes of one run ------------------------------------------------------------------


def test_a_resume_of_a_run_another_process_holds_is_refused(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"  # $TUI_TRAINER_RUNS in the tests
    run = _interrupted_run(runs_dir, tiny_data)
    holder = threading.Event()
    release = threading.Event()

    def hold():  # another "process": its own lock object, its own descriptor
        with owner.hold(run.path, f"run {run.id}"):
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
    (folder / OWNER_FILE).write_text(previous)
    with pytest.raises(KeyboardInterrupt), owner.hold(folder, "run"):
        raise KeyboardInterrupt  # before training: the folder as it was
    assert (folder / OWNER_FILE).read_text() == previous
    with pytest.raises(KeyboardInterrupt), owner.hold(folder, "run") as claim:
        claim.started = True
        raise KeyboardInterrupt  # during training: the holder stays for readers to judge
    assert read_json(folder / OWNER_FILE)["pid"] == os.getpid()
    assert not [t for t in threading.enumerate() if t.name == owner.THREAD_NAME]
