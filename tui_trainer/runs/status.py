"""What each status means, in one table: for a listing, for `run --resume`, for a sweep's member
and for a sweep's exit code. The CLI, the sweeps and the console ask this table; a new status is
one row here. A sweep member's status is its run's, or PENDING while no run has its config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tui_trainer.events import RunStatus

# A sweep member's state when no run in the runs folder has its config.
PENDING = "pending"
# The console's states of the run it shows, before and instead of a RunStatus.
PREPARING = "preparing"  # before the engine says RunStarted (the decode, the precision probe)
SKIPPED = "skipped"  # a sweep member the console left to the process that claims it

EXIT_DONE = 0
EXIT_UNDONE = 1  # failed, diverged, or left to run again
EXIT_ELSEWHERE = 3  # trained in another process (a sweep's, or `sweep --member K`'s)
EXIT_INTERRUPTED = 130  # stopped by the user: 128 + SIGINT, as a shell reports Ctrl-C


class SweepMove(StrEnum):
    """What a sweep does with a member in this state, under the member's claim."""

    SKIP = "skip"  # done, live, or final (diverged: the same seed diverges the same way again)
    RESUME = "resume"  # in its own folder from last.pt, as `run --resume`; fresh without one
    FRESH = "fresh"  # from scratch in a new run folder
    RETRY = "retry"  # fresh, unless it failed in another process during this invocation


@dataclass(frozen=True)
class Meaning:
    resumable: bool  # `run --resume` continues such a run in its own folder
    sweep: SweepMove  # what a sweep does with a member in this state
    exit_code: int  # its part in a sweep's exit code (`exit_code_for`)
    # the "claim" column: a claim left by a dead process says more (crashed, stale) than
    # no run folder yet, or one that says no more than "stopped"
    claim_overrides: bool
    label: str  # what the status says, in a listing's words


# In the order a person reads them: waiting, live, done, stopped, dead, broken, final.
# fmt: off
STATUSES: dict[str, Meaning] = {
    # status                       resume sweep             exit code       claim  label
    PENDING:               Meaning(False, SweepMove.FRESH,  EXIT_UNDONE,    True,  "not run yet"),
    RunStatus.RUNNING:     Meaning(False, SweepMove.SKIP,   EXIT_ELSEWHERE, False, "training"),
    RunStatus.COMPLETED:   Meaning(False, SweepMove.SKIP,   EXIT_DONE,      False, "done"),
    RunStatus.INTERRUPTED: Meaning(True,  SweepMove.RESUME, EXIT_UNDONE,    True,  "stopped"),
    RunStatus.CRASHED:     Meaning(True,  SweepMove.RESUME, EXIT_UNDONE,    False, "process gone"),
    RunStatus.STALE:       Meaning(True,  SweepMove.RESUME, EXIT_UNDONE,    False, "host silent"),
    RunStatus.FAILED:      Meaning(True,  SweepMove.RETRY,  EXIT_UNDONE,    False, "failed"),
    RunStatus.DIVERGED:    Meaning(False, SweepMove.SKIP,   EXIT_UNDONE,    False, "diverged"),
    RunStatus.PRUNED:      Meaning(False, SweepMove.SKIP,   EXIT_DONE,      False, "pruned"),
}
# fmt: on

# Statuses `run --resume` continues from; completed and diverged runs would only repeat themselves.
RESUMABLE = frozenset(s for s, m in STATUSES.items() if m.resumable)
# Member states after which `sweep` runs the member again, resumed or fresh.
RERUN_STATUSES = tuple(s for s, m in STATUSES.items() if m.sweep is not SweepMove.SKIP)
# Runs done with (completed, pruned): nothing resumes them, so their last.pt is only disk.
FINISHED = frozenset(s for s, m in STATUSES.items() if m.exit_code == EXIT_DONE)
# Member states a claim left by a dead process overrides.
UNSETTLED = tuple(s for s, m in STATUSES.items() if m.claim_overrides)


def sweep_move(status: str) -> SweepMove:
    """What a sweep does with a member in `status`; a status this version does not know (a
    newer version's) starts fresh."""
    row = STATUSES.get(status)
    return SweepMove.FRESH if row is None else row.sweep


def resumable_names() -> str:
    """ "interrupted, crashed, stale or failed": the resumable statuses, for a message."""
    names = [str(s) for s in STATUSES if s in RESUMABLE]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def exit_code_for(statuses: Iterable[str], interrupted: bool) -> int:
    """130 stopped by the user; 1 a member failed, diverged or is left unfinished; else 3 (as
    `--member`'s) while some still train in another process; 0 once every member completed."""
    if interrupted:
        return EXIT_INTERRUPTED
    codes = {STATUSES[s].exit_code if s in STATUSES else EXIT_UNDONE for s in statuses}
    for code in (EXIT_UNDONE, EXIT_ELSEWHERE):
        if code in codes:
            return code
    return EXIT_DONE
