"""Runs the app was asked to train: the job, the queue that orders them, and the relay that
turns engine events (from the training thread) into Textual messages at a bounded rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui_trainer.config import RunConfig
from tui_trainer.events import Event, Step
from tui_trainer.studies.sweeps import member_meta
from tui_trainer.tui.messages import EngineEvent, StepBatch

# Step events arrive as fast as the engine trains (hundreds a second on a GPU with small
# images); the UI redraws at most this often and gets the steps in between as one batch.
STEP_INTERVAL_S = 0.1


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


class EventRelay:
    """The engine's `on_event`: runs in the training thread and posts messages to the app.

    Non-step events go out at once. Steps are collected and posted as one `StepBatch` at most
    every `interval` seconds, and always before any other event and at an epoch's last step, so
    nothing is lost or reordered and the UI thread sees ~10 updates a second at most.
    """

    def __init__(
        self,
        post: Callable[[Any], Any],
        job: int,
        interval: float = STEP_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.post, self.job, self.interval, self.clock = post, job, interval, clock
        self.pending: list[Step] = []
        self.last_post = float("-inf")

    def __call__(self, event: Event) -> None:
        if isinstance(event, Step):
            self.pending.append(event)
            due = self.clock() - self.last_post >= self.interval
            if due or event.step == event.steps_per_epoch:
                self.flush()
            return
        self.flush()
        self.post(EngineEvent(self.job, event))

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = tuple(self.pending), []
            self.last_post = self.clock()
            self.post(StepBatch(self.job, batch))
