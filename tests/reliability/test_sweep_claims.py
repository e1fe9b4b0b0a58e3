"""Two `tui-trainer sweep` processes on one runs folder share the members out through their
claims: each member trains once; a member whose process is killed is taken over, and a member
killed after an epoch resumes in its own folder."""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.support.processes import spawn_cli
from tests.support.runs import invoke
from tests.support.sweeps import sweep_presets
from tui_trainer.runs.groups import comparable
from tui_trainer.runs.store import list_runs
from tui_trainer.studies import sweep_file, sweeps

# a member the other process took: held by it, or completed by the time this one looked
SKIPPED = re.compile(r"^tiny-four \d/4: tiny-lr=[\d.]+: (running elsewhere|completed) \(")
FOUR = 'base = "tiny"\n[grid]\nlr = [0.01, 0.02, 0.03, 0.04]\n'


@pytest.fixture
def presets(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_TRAINER_HEARTBEAT", "0.5")
    return sweep_presets(tmp_path / "presets", monkeypatch, {"tiny-four": FOUR})


def sweep_args(tiny_data, runs_dir, *extra) -> list:
    return ["sweep", "tiny-four", "--data", tiny_data, "--runs-dir", runs_dir, *extra]


def test_two_sweeps_at_once_train_each_member_once(presets, tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    procs = [spawn_cli(*sweep_args(tiny_data, runs_dir)) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    # 3: it ended while the other still trained a member; the last to end saw them all done
    codes = [p.returncode for p in procs]
    assert set(codes) <= {0, 3} and 0 in codes, outputs
    runs = list_runs(runs_dir)
    assert len(runs) == 4 and {r.status() for r in runs} == {"completed"}, outputs
    lrs = sorted(r.config()["lr"] for r in runs)
    assert lrs == [0.01, 0.02, 0.03, 0.04]  # each member once
    trained = [line for o in outputs for line in o.splitlines() if line.startswith("run folder:")]
    assert len(trained) == 4  # between them: each member trained by one process
    # a member the other had claimed when this one came to it is named, with its holder
    skipped = [line for o in outputs for line in o.splitlines() if SKIPPED.match(line)]
    assert all(" on " in line for line in skipped if "running elsewhere" in line)
    sweep = sweep_file.load_sweep("tiny-four")
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["completed"] * 4
    assert all(s.holder is None for s in states)  # both let go of their claims


def wait_for_checkpoint(procs, runs_dir):
    """The run folder of one of `procs` once it has a last.pt (an epoch done), and its process."""
    deadline = time.monotonic() + 400
    pids = {p.pid: p for p in procs}
    while time.monotonic() < deadline:
        for run in list_runs(runs_dir):
            pid = run.summary().get("pid")
            if run.last_path.exists() and run.status() == "running" and pid in pids:
                return run, pids[pid]
        assert all(p.poll() is None for p in procs), [p.stdout.read() for p in procs]
        time.sleep(0.05)
    raise AssertionError("no run reached its first checkpoint")


def test_a_member_whose_process_is_killed_is_taken_over_and_resumed(presets, tiny_data, tmp_path):
    """Two sweeps of 3-epoch members; SIGKILL the process of the first run that finished an
    epoch. The other goes on with the rest and, if it comes to the killed member after the kill,
    resumes it in its folder; else a rerun does."""
    runs_dir = tmp_path / "runs"
    args = sweep_args(tiny_data, runs_dir, "--set", "epochs=3")
    procs = [spawn_cli(*args) for _ in range(2)]
    try:
        killed, victim = wait_for_checkpoint(procs, runs_dir)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
        (other,) = [p for p in procs if p is not victim]
        output = other.communicate(timeout=600)[0]
    finally:
        for p in procs:
            p.kill()
    resumed = f"(resuming run {killed.id})"
    if resumed in output:  # the other process came to the member after the kill
        assert other.returncode == 0, output
    else:  # it had passed it: the member is left crashed, for the next sweep
        assert other.returncode == 1 and killed.status() == "crashed", output
        rerun = invoke(*args)
        assert rerun.exit_code == 0 and resumed in rerun.output, rerun.output
    sweep = sweep_file.load_sweep("tiny-four", {"epochs": "3"})
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["completed"] * 4
    keys = [comparable(r.config()) for r in list_runs(runs_dir)]
    assert len(keys) == len(set(keys)) == 4  # no member trained twice, none restarted
    assert killed.id in {s.run.id for s in states} and killed.status() == "completed"
    assert killed.summary().get("resumes") == 1


def test_a_dead_members_claim_is_taken_by_the_next_process(presets, tiny_data, tmp_path):
    """A process killed before its member's first epoch ends (no last.pt): the next sweep takes
    the dead claim and starts that member fresh."""
    runs_dir = tmp_path / "runs"
    args = sweep_args(tiny_data, runs_dir)
    proc = spawn_cli(*args)
    try:
        deadline = time.monotonic() + 300
        while (
            not (runs_dir / ".claims").is_dir()
            or not sweeps.member_states(sweep_file.load_sweep("tiny-four"), runs_dir)[0].holder
        ):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    (state, *_) = sweeps.member_states(sweep_file.load_sweep("tiny-four"), runs_dir)
    assert state.holder is not None and state.holder.status == "crashed"
    assert state.status != "running"

    rerun = invoke(*args)
    assert rerun.exit_code == 0, rerun.output
    assert "tiny-four 1/4: tiny-lr=0.01" in rerun.output
    states = sweeps.member_states(sweep_file.load_sweep("tiny-four"), runs_dir)
    assert [s.status for s in states] == ["completed"] * 4
