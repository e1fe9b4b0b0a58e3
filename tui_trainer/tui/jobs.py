"""Runs the app was asked to train: the job, the queue that orders them, the states a job has in
the app, and where Start trains (the relay that turns engine events into messages is in
tui/relay.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tui_trainer.config import RunConfig
from tui_trainer.studies.sweeps import member_meta


class StartMode(StrEnum):
    """Where Start trains: this console's training thread (a run ends with the console, and
    waits in its queue when another trains), or a detached `tui-trainer run`/`sweep` child in
    its own session, which outlives the console and its terminal (runs/detached.py); for a
    sweep also a detached `tui-trainer sweep --parallel N`, N members at once."""

    IN_CONSOLE = "in-console"
    DETACHED = "detached"
    PARALLEL = "parallel"


@dataclass(frozen=True)
class StartChoice:
    """The Start dialog's answer: where to train, and for PARALLEL how many members at once."""

    mode: StartMode
    parallel: int | None = None  # set for StartMode.PARALLEL only


class JobState(StrEnum):
    """Where a job is in the app; once it trains, its run has a RunStatus like any other."""

    TRAINING = "training"  # the app's training thread is on it
    QUEUED = "queued"  # waiting in the app's queue


@dataclass
class Job:
    number: int
    preset: str
    overrides: dict[str, str]
    config: RunConfig
    sweep: str = ""  # the sweep this job is a member of, if any
    member: str = ""  # its member name: the run id ends with it, config.json records both

    @property
    def label(self) -> str:
        if self.sweep:
            return f"#{self.number} {self.sweep}/{self.member}"
        changes = " ".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"#{self.number} {self.preset}" + (f" {changes}" if changes else "")

    def engine_tags(self) -> dict[str, Any]:
        """The engine's `name` and `extra_meta`: what tags a sweep member's run folder."""
        if not self.sweep:
            return {"name": None, "extra_meta": None}
        return {"name": self.member, "extra_meta": member_meta(self.sweep, self.member)}


@dataclass
class JobQueue:
    """Jobs waiting their turn, first one next. Editable: remove and move by job number."""

    jobs: list[Job] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def pop_next(self) -> Job | None:
        return self.jobs.pop(0) if self.jobs else None

    def remove(self, number: int) -> Job | None:
        for i, job in enumerate(self.jobs):
            if job.number == number:
                return self.jobs.pop(i)
        return None

    def move(self, number: int, delta: int) -> bool:
        """Move a job `delta` places (negative: sooner). False when it cannot move."""
        for i, job in enumerate(self.jobs):
            if job.number == number:
                j = i + delta
                if not 0 <= j < len(self.jobs):
                    return False
                self.jobs.insert(j, self.jobs.pop(i))
                return True
        return False

    def clear(self) -> None:
        self.jobs.clear()
