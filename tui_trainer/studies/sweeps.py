"""A sweep in the runs folder: each member's state, which members `sweep` runs again, running
one, and the sweep's exit code (studies/sweep_file.py reads the sweep file into members).

A member is matched by its resolved config (`device` and `threads` aside: where a run ran does
not change what it measured), whatever started its runs; one claimed by a live process
(runs/claims.py) reads `running` and is left to it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tui_trainer.events import EventCallback, RunEnded, RunStatus
from tui_trainer.runs.claims import claim_hash, read_holders
from tui_trainer.runs.groups import comparable
from tui_trainer.runs.owner import Owner
from tui_trainer.runs.status import PENDING, RERUN_STATUSES, exit_code_for
from tui_trainer.runs.store import Run, list_runs
from tui_trainer.studies.sweep_file import Sweep, SweepMember


@dataclass(frozen=True)
class MemberState:
    member: SweepMember
    status: str  # PENDING or the run's RunStatus; `running` while a live process claims it
    run: Run | None  # the run the status comes from (None when pending)
    holder: Owner | None = None  # the member's claim, live or left by a dead process


class Standing(Protocol):
    """A member and its state: a MemberState, or a front end's row made from one."""

    @property
    def member(self) -> SweepMember: ...

    @property
    def status(self) -> str: ...


def member_key(member: SweepMember) -> str:
    """The member's comparable config: what its runs and its claim are found by."""
    return comparable(member.config.to_dict()) or ""


def member_states(sweep: Sweep, runs_dir: Path) -> list[MemberState]:
    """Each member's standing in the runs folder: its latest completed run if there is one,
    else a run still going, else its latest run's outcome, else pending; a member claimed by a
    live process and not completed reads `running` (its run folder may not exist yet)."""
    by_key, holders = _runs_by_key(runs_dir), read_holders(runs_dir)
    states = []
    for member in sweep.members:
        key = member_key(member)
        state = state_from_runs(member, by_key.get(key, []))
        states.append(_with_holder(state, holders.get(claim_hash(key))))
    return states


def member_state(member: SweepMember, runs_dir: Path) -> MemberState:
    """One member's standing from its runs alone (no claims): what its claimer looks at."""
    return state_from_runs(member, _runs_by_key(runs_dir).get(member_key(member), []))


def _runs_by_key(runs_dir: Path) -> dict[str, list[Run]]:
    by_key: dict[str, list[Run]] = {}
    for run in list_runs(runs_dir):
        key = comparable(run.config())
        if key is not None:
            by_key.setdefault(key, []).append(run)
    return by_key


def state_from_runs(member: SweepMember, runs: list[Run]) -> MemberState:
    statuses = [(run, run.status()) for run in runs]
    for wanted in (RunStatus.COMPLETED, RunStatus.RUNNING):
        found = [run for run, status in statuses if status == wanted]
        if found:
            return MemberState(member, wanted, found[-1])
    if statuses:
        return MemberState(member, statuses[-1][1], statuses[-1][0])
    return MemberState(member, PENDING, None)


def _with_holder(state: MemberState, holder: Owner | None) -> MemberState:
    if holder is None:
        return state
    live = holder.live and state.status != RunStatus.COMPLETED
    status = RunStatus.RUNNING if live else state.status
    return dataclasses.replace(state, status=status, holder=holder)


def pending_members(states: Iterable[Standing]) -> list[SweepMember]:
    """The members `sweep` still has to run, in order, from their `member_states`."""
    return [s.member for s in states if s.status in RERUN_STATUSES]


def member_meta(sweep: str, member: str) -> dict[str, str]:
    """The tags config.json carries for a sweep member's run (whoever started it)."""
    return {"sweep": sweep, "sweep_member": member}


def run_member(
    sweep: Sweep,
    member: SweepMember,
    *,
    data_dir: Path,
    runs_dir: Path,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
) -> tuple[Run | None, RunEnded]:
    """Train one member headless, tagging its run with the sweep (config.json's `sweep`).
    A stop before training returns no run (runs.launch.start_run)."""
    from tui_trainer.runs.launch import start_run

    return start_run(
        member.config,
        preset=member.preset,
        overrides=member.overrides,
        data_dir=data_dir,
        runs_dir=runs_dir,
        on_event=on_event,
        stop=stop,
        name=member.name,
        extra_meta=member_meta(sweep.name, member.name),
    )


def sweep_exit_code(states: list[MemberState], interrupted: bool) -> int:
    """The sweep's exit code from its members' states (runs/status.exit_code_for)."""
    return exit_code_for({s.status for s in states}, interrupted)
