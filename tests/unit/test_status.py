"""runs/status.py: one table of what each status means, walked here against the code that asks
it (`run --resume`, a sweep's member decisions, a sweep's exit code)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tui_trainer.cli import sweeps as sweep_command
from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.files import write_json_atomic
from tui_trainer.runs import status
from tui_trainer.runs.resume import check_resumable
from tui_trainer.runs.store import Run
from tui_trainer.studies import members, sweep_file, sweeps
from tui_trainer.studies.members import SkipReason

TINY_PRESET = 'model = "resnet18"\nimage_size = 32\nresize = 36\nepochs = 1\nlr = 0.01\n'
ALL_STATES = [status.PENDING, *RunStatus]


def test_every_status_has_one_row_and_a_label():
    assert len(status.STATUSES) == len(ALL_STATES) and set(status.STATUSES) == set(ALL_STATES)
    assert all(row.label for row in status.STATUSES.values())


def test_the_derived_sets_are_those_the_sweeps_and_the_console_used():
    assert status.RESUMABLE == {"interrupted", "crashed", "failed", "stale"}
    assert set(status.RERUN_STATUSES) == {"pending", "failed", "interrupted", "crashed", "stale"}
    assert sweeps.RERUN_STATUSES == status.RERUN_STATUSES and sweeps.PENDING == status.PENDING
    assert set(status.UNSETTLED) == {"pending", "interrupted"}
    assert status.resumable_names() == "interrupted, crashed, stale or failed"


@pytest.mark.parametrize("state", list(RunStatus))
def test_resumable_is_what_run_resume_accepts(state, tmp_path, monkeypatch):
    monkeypatch.setattr(Run, "status", lambda self, summary=None: state)
    run = Run(tmp_path / "20240101-000000-x")
    if state in status.RESUMABLE:
        check_resumable(run)
    else:
        with pytest.raises(UserError, match=f"is {state}"):
            check_resumable(run)


@pytest.fixture
def member(tmp_path) -> tuple[sweep_file.Sweep, sweep_file.SweepMember]:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_PRESET)
    (folder / "s.toml").write_text('base = "tiny"\n[grid]\nlr = [0.1]\n')
    sweep = sweep_file.load_sweep("s", directory=folder)
    return sweep, sweep.members[0]


def _run(runs: Path, summary: dict, last_pt: bool) -> Run:
    folder = runs / "20240101-000000-m"
    folder.mkdir(parents=True)
    write_json_atomic(folder / "summary.json", summary)
    if last_pt:
        (folder / "last.pt").write_bytes(b"checkpoint")
    return Run(folder)


SINCE = 1_000_000.0
# (state, ended after the sweep's start, has last.pt) -> what claim_member decides: a
# SkipReason, "resume" (its own run, from last.pt) or "fresh" (a new run).
DECISIONS = [
    (status.PENDING, False, False, "fresh"),
    (RunStatus.RUNNING, False, False, SkipReason.RUNNING),
    (RunStatus.COMPLETED, False, True, SkipReason.COMPLETED),
    (RunStatus.DIVERGED, False, True, SkipReason.DIVERGED),
    (RunStatus.FAILED, True, True, SkipReason.FAILED_NOW),
    (RunStatus.FAILED, False, True, "fresh"),
    (RunStatus.INTERRUPTED, False, True, "resume"),
    (RunStatus.INTERRUPTED, False, False, "fresh"),
    (RunStatus.CRASHED, False, True, "resume"),
    (RunStatus.CRASHED, False, False, "fresh"),
    (RunStatus.STALE, False, True, "resume"),
    (RunStatus.STALE, False, False, "fresh"),
    ("from-a-newer-version", False, True, "fresh"),
]


@pytest.mark.parametrize(("state", "ended_now", "last_pt", "expected"), DECISIONS)
def test_a_sweep_decides_each_member_by_its_state(
    member, tmp_path, monkeypatch, state, ended_now, last_pt, expected
):
    sweep, m = member
    runs = tmp_path / "runs"
    ended_at = SINCE + 1 if ended_now else SINCE - 60
    run = None if state == status.PENDING else _run(runs, {"ended_at": ended_at}, last_pt)
    found = sweeps.MemberState(m, state, run)
    monkeypatch.setattr(members, "member_state", lambda member, runs_dir: found)
    taken = members.claim_member(sweep, m, runs, since=SINCE)
    if isinstance(taken, members.Skipped):
        assert taken.reason is expected
        return
    taken.claim.release()
    assert ("resume" if taken.resume is not None else "fresh") == expected
    assert taken.resume is None or taken.resume.path == run.path


def _old_sweep_exit_code(statuses: set[str], interrupted: bool) -> int:
    if interrupted:
        return 130
    # pruned (new with searches) is done, as completed is: a search's verdict, not a failure
    if statuses - {RunStatus.COMPLETED, RunStatus.RUNNING, RunStatus.PRUNED}:
        return 1
    return 3 if RunStatus.RUNNING in statuses else 0


@pytest.mark.parametrize("interrupted", [False, True])
def test_a_sweeps_exit_code_is_the_one_it_always_was(interrupted):
    states = [*ALL_STATES, "from-a-newer-version"]
    for n in range(4):
        for chosen in itertools.combinations(states, n):
            got = status.exit_code_for(chosen, interrupted)
            assert got == _old_sweep_exit_code(set(chosen), interrupted), chosen


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (SkipReason.HELD, 3),
        (SkipReason.RUNNING, 3),
        (SkipReason.COMPLETED, 0),
        (SkipReason.DIVERGED, 1),
        (SkipReason.FAILED_NOW, 1),
    ],
)
def test_a_skipped_member_exits_as_before(reason, code):
    assert sweep_command._skipped_exit_code(reason) == code


def test_the_resume_hint_for_a_status_outside_the_table_names_the_resumable_ones(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(Run, "status", lambda self, summary=None: "weird")
    with pytest.raises(UserError, match="only interrupted, crashed, stale or failed runs resume"):
        check_resumable(Run(tmp_path / "20240101-000000-x"))


def test_finished_runs_are_the_completed_and_the_pruned():
    from tui_trainer.runs.status import FINISHED, RESUMABLE

    assert FINISHED == {RunStatus.COMPLETED, RunStatus.PRUNED}
    assert not FINISHED & RESUMABLE  # their last.pt is removed: nothing may resume them
