"""Sweep member claims: a live claim is left alone, a dead one taken over, and what the member's
runs say under the claim decides between skipping, resuming and starting fresh."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.processes import subprocess_env
from tui_trainer.events import RunStatus
from tui_trainer.files import read_json, write_json_atomic
from tui_trainer.runs import claims
from tui_trainer.runs.owner import OWNER_FILE, Owner
from tui_trainer.runs.store import list_runs
from tui_trainer.studies import members, sweep_file, sweeps

TINY_PRESET = 'model = "resnet18"\nimage_size = 32\nresize = 36\nepochs = 1\nlr = 0.01\n'
SWEEP = 'base = "tiny"\n[grid]\nlr = [0.1, 0.2, 0.3]\n'
# Takes member 1's claim in another process, says so, and waits to be killed.
HOLD_CLAIM = """
import sys, time
from tui_trainer.runs.claims import take_claim
taken = take_claim(sys.argv[1], sys.argv[2], sweep="s", member="m")
print(type(taken).__name__, flush=True)
time.sleep(600)
"""


@pytest.fixture
def sweep(tmp_path) -> sweep_file.Sweep:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_PRESET)
    (folder / "s.toml").write_text(SWEEP)
    return sweep_file.load_sweep("s", directory=folder)


def write_run(runs: Path, run_id: str, member: sweep_file.SweepMember, summary: dict) -> Path:
    folder = runs / run_id
    folder.mkdir(parents=True)
    write_json_atomic(folder / "config.json", {"config": member.config.to_dict(), "preset": "t"})
    write_json_atomic(folder / "summary.json", summary)
    return folder


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hold_in_child(runs: Path, key: str) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIM, str(runs), key],
        env=subprocess_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "MemberClaim"
    return child


def test_a_live_claim_is_skipped_and_named_before_any_run_folder(sweep, tmp_path):
    runs = tmp_path / "runs"
    first = sweep.members[0]
    child = hold_in_child(runs, sweeps.member_key(first))
    try:
        states = sweeps.member_states(sweep, runs)
        assert [s.status for s in states] == ["running", "pending", "pending"]
        holder = states[0].holder
        assert holder is not None and holder.live and holder.pid == child.pid
        assert (holder.host, holder.sweep, holder.member) == (socket.gethostname(), "s", "m")
        assert [m.name for m in sweeps.pending_members(states)] == [
            m.name for m in sweep.members[1:]
        ]
        taken = members.claim_member(sweep, first, runs, since=time.time())
        assert isinstance(taken, members.Skipped) and taken.reason is members.SkipReason.HELD
        assert f"pid {child.pid} on" in taken.describe()
        assert list_runs(runs) == []  # the claim folder is not a run
    finally:
        child.kill()
        child.wait()
    # killed: the kernel dropped its lock, its side file names a dead process
    (state, *_) = sweeps.member_states(sweep, runs)
    assert state.status == "pending" and state.holder.status is RunStatus.CRASHED
    taken = members.claim_member(sweep, first, runs, since=time.time())
    assert isinstance(taken, members.Claimed) and taken.resume is None
    with taken:
        taken.claim.note_run("some-run")
        owner = read_json(taken.claim.folder / OWNER_FILE)
        assert owner["pid"] == os.getpid() and owner["run_id"] == "some-run"
        assert owner["member"] == first.name and owner["sweep"] == "s"
    assert not (taken.claim.folder / OWNER_FILE).exists()  # a clean release leaves no side file


def test_a_member_completed_before_the_claim_is_skipped_and_the_claim_let_go(sweep, tmp_path):
    runs = tmp_path / "runs"
    member = sweep.members[1]
    write_run(runs, "20240101-000000-done", member, {"status": "completed"})
    taken = members.claim_member(sweep, member, runs, since=time.time())
    assert isinstance(taken, members.Skipped) and taken.reason is members.SkipReason.COMPLETED
    assert taken.run.id == "20240101-000000-done"
    again = claims.take_claim(runs, sweeps.member_key(member), sweep="s", member="x")
    assert isinstance(again, claims.MemberClaim)  # released: free to take
    again.release()


def test_a_crashed_run_with_a_checkpoint_resumes_one_without_starts_fresh(sweep, tmp_path):
    runs = tmp_path / "runs"
    crashed = {"status": "running", "pid": dead_pid(), "host": socket.gethostname()}
    with_last = write_run(runs, "20240101-000000-a", sweep.members[0], crashed)
    (with_last / "last.pt").write_bytes(b"checkpoint")
    write_run(runs, "20240101-000000-b", sweep.members[1], crashed)
    interrupted = write_run(runs, "20240101-000000-c", sweep.members[2], {"status": "interrupted"})
    (interrupted / "last.pt").write_bytes(b"checkpoint")
    decided = []
    for member in sweep.members:
        taken = members.claim_member(sweep, member, runs, since=time.time())
        assert isinstance(taken, members.Claimed)
        decided.append(taken.resume.id if taken.resume else None)
        taken.claim.release()
    assert decided == ["20240101-000000-a", None, "20240101-000000-c"]


def test_a_failure_during_this_invocation_is_final_an_older_one_reruns(sweep, tmp_path):
    runs = tmp_path / "runs"
    since = time.time()
    first, second = sweep.members[:2]
    write_run(runs, "20240101-000000-old", first, {"status": "failed", "ended_at": since - 60})
    write_run(runs, "20240101-000000-new", second, {"status": "failed", "ended_at": since + 1})
    old = members.claim_member(sweep, first, runs, since=since)
    assert isinstance(old, members.Claimed) and old.resume is None  # failed: from scratch
    old.claim.release()
    new = members.claim_member(sweep, second, runs, since=since)
    assert isinstance(new, members.Skipped) and new.reason is members.SkipReason.FAILED_NOW


def remote_owner(folder: Path, silent_s: float) -> None:
    """owner.json of a claim from another host, last rewritten `silent_s` ago."""
    owner = {"host": "another-host", "pid": 4242, "interval": 0.2, "beat": 1, "member": "m"}
    write_json_atomic(folder / OWNER_FILE, owner)
    when = time.time() - silent_s
    os.utime(folder / OWNER_FILE, (when, when))


def test_another_hosts_claim_is_taken_only_once_its_owner_json_goes_silent(sweep, tmp_path):
    """flock may be local to each machine on a network mount: the side file of a claim from
    another host is judged before it is taken over, by when it was last rewritten."""
    runs = tmp_path / "runs"
    key = sweeps.member_key(sweep.members[0])
    folder = claims.claim_folder(runs, key)
    folder.mkdir(parents=True)
    remote_owner(folder, silent_s=0.0)
    held = claims.take_claim(runs, key, sweep="s", member="mine")
    assert isinstance(held, Owner) and held.host == "another-host" and held.live
    remote_owner(folder, silent_s=3600.0)
    taken = claims.take_claim(runs, key, sweep="s", member="mine")  # silent now: taken over
    assert isinstance(taken, claims.MemberClaim)
    assert read_json(folder / OWNER_FILE)["pid"] == os.getpid()
    taken.release()


def test_a_killed_holders_claim_is_free_at_once(sweep, tmp_path):
    runs = tmp_path / "runs"
    key = sweeps.member_key(sweep.members[2])
    child = hold_in_child(runs, key)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    holder = claims.read_holder(runs, key)
    assert holder is not None and holder.status is RunStatus.CRASHED and not holder.live
    taken = claims.take_claim(runs, key, sweep="s", member="mine")
    assert isinstance(taken, claims.MemberClaim)
    taken.release()
