"""The relay that turns engine events (from the training thread) into Textual messages at a
bounded rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tui_trainer.events import Event, Step
from tui_trainer.tui.messages import EngineEvent, StepBatch

# Step events arrive as fast as the engine trains (hundreds a second on a GPU with small
# images); the UI redraws at most this often and gets the steps in between as one batch.
STEP_INTERVAL_S = 0.1


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
