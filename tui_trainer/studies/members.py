"""One sweep member, trained by whichever sweep process claims it first (runs/claims.py).

Under the claim the member's runs are looked at again (another process may have completed it
since the sweep's first look) and the status table decides (runs/status.py). `since` is when the
sweep command started (a `--parallel` child gets its parent's), so a member that failed in
another process during this invocation is not retried by it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tui_trainer.events import EventCallback, RunEnded, RunStarted
from tui_trainer.runs.claims import MemberClaim, take_claim
from tui_trainer.runs.owner import Owner
from tui_trainer.runs.resume import remove_temp_files
from tui_trainer.runs.status import SweepMove, sweep_move
from tui_trainer.runs.store import Run
from tui_trainer.studies import sweeps
from tui_trainer.studies.sweep_file import Sweep, SweepMember
from tui_trainer.studies.sweeps import member_key, member_state

# Starts a member's fresh run given the event callback to use: runs.launch.start_run's call.
FreshStart = Callable[[EventCallback], tuple[Run | None, RunEnded]]


class SkipReason(StrEnum):
    HELD = "held"  # claimed by a live process
    COMPLETED = "completed"
    RUNNING = "running"  # a live run outside any claim
    DIVERGED = "diverged"
    FAILED_NOW = "failed"  # failed during this invocation, in another process


@dataclass(frozen=True)
class Skipped:
    """A member this process leaves alone, and why."""

    member: SweepMember
    reason: SkipReason
    run: Run | None = None
    holder: Owner | None = None

    def describe(self) -> str:
        run = f" (run {self.run.id})" if self.run else ""
        if self.reason is SkipReason.HELD and self.holder is not None:
            return f"running elsewhere ({self.holder.describe()})"
        return {
            SkipReason.COMPLETED: f"completed{run}",
            SkipReason.RUNNING: f"running elsewhere{run}",
            SkipReason.DIVERGED: f"diverged{run}: final, delete its run folder to retry it",
            SkipReason.FAILED_NOW: f"failed in another process during this sweep{run}: "
            "rerun the sweep to retry it",
        }.get(self.reason, str(self.reason))


class Claimed:
    """A member this process holds the claim of: `train` it, then let go (a `with` block)."""

    def __init__(self, sweep: Sweep, member: SweepMember, claim: MemberClaim, resume: Run | None):
        self.sweep, self.member, self.claim = sweep, member, claim
        self.resume = resume  # the run to continue, or None: a fresh run

    def train(
        self,
        *,
        data_dir: Path,
        runs_dir: Path,
        on_event: EventCallback | None = None,
        stop: threading.Event | None = None,
        start: FreshStart | None = None,
    ) -> tuple[Run | None, RunEnded]:
        """Resume the member's run, or start it fresh: with `start(on_event)` when given (the
        console's own engine, which tests stand in for), else `sweeps.run_member`."""

        def noting(event) -> None:
            if isinstance(event, RunStarted):
                self.claim.note_run(event.run_id)
            if on_event is not None:
                on_event(event)

        if self.resume is None and start is not None:
            return start(noting)
        if self.resume is None:
            return sweeps.run_member(  # through the module: tests stand in for it
                self.sweep,
                self.member,
                data_dir=data_dir,
                runs_dir=runs_dir,
                on_event=noting,
                stop=stop,
            )
        from tui_trainer.runs.launch import resume_run

        self.claim.note_run(self.resume.id)
        device = self.member.config.device  # the sweep's --device, as a fresh member would use
        return resume_run(
            self.resume.id,
            runs_dir=runs_dir,
            data_dir=data_dir,
            device=device,
            on_event=noting,
            stop=stop,
        )

    def __enter__(self) -> Claimed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.claim.release()


def claim_member(
    sweep: Sweep,
    member: SweepMember,
    runs_dir: Path,
    *,
    since: float,
) -> Claimed | Skipped:
    """Claim `member` and decide what to do with it (runs/status.py)."""
    taken = take_claim(runs_dir, member_key(member), sweep=sweep.name, member=member.name)
    if isinstance(taken, Owner):
        return Skipped(member, SkipReason.HELD, holder=taken)
    state = member_state(member, runs_dir)
    skip = _skip_reason(state.status, state.run, since)
    if skip is not None:
        taken.release()
        return Skipped(member, skip, state.run)
    taken_over = sweep_move(state.status) is SweepMove.RESUME and state.run is not None
    resumable = taken_over and state.run.last_path.exists()
    if taken_over and not resumable:
        # killed while its first last.pt was written: the member starts fresh in a new folder,
        # and the dead run's half-written checkpoint (hundreds of MB) is of no use to anyone
        remove_temp_files(state.run)
    return Claimed(sweep, member, taken, state.run if resumable else None)


def _skip_reason(status: str, run: Run | None, since: float) -> SkipReason | None:
    move = sweep_move(status)
    if move is SweepMove.SKIP:
        return SkipReason(status)  # completed, running or diverged: named as the status
    if move is SweepMove.RETRY and run is not None and _ended_at(run) >= since:
        return SkipReason.FAILED_NOW
    return None


def _ended_at(run: Run) -> float:
    value = run.summary().get("ended_at")
    return float(value) if isinstance(value, int | float) else 0.0


def train_member(
    sweep: Sweep,
    member: SweepMember,
    *,
    data_dir: Path,
    runs_dir: Path,
    since: float,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    start: FreshStart | None = None,
) -> tuple[Run | None, RunEnded] | Skipped:
    """Claim `member`, then resume or start it under the claim, or say why it is skipped: what
    the console does for each member of a sweep it trains one at a time."""
    taken = claim_member(sweep, member, runs_dir, since=since)
    if isinstance(taken, Skipped):
        return taken
    with taken:
        return taken.train(
            data_dir=data_dir, runs_dir=runs_dir, on_event=on_event, stop=stop, start=start
        )
