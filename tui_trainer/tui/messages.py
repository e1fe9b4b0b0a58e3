"""Messages the training thread posts to the app, and the app's notes to its screens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from tui_trainer.events import Event, RunEnded, Step

if TYPE_CHECKING:
    from tui_trainer.runs.store import Run
    from tui_trainer.tui.jobs import Job


class EngineEvent(Message):
    """One engine event other than Step (RunStarted, Log, Epoch, RunEnded) from job `job`."""

    def __init__(self, job: int, event: Event) -> None:
        super().__init__()
        self.job = job
        self.event = event


class StepBatch(Message):
    """The Step events since the last batch, in order (the relay coalesces them)."""

    def __init__(self, job: int, steps: tuple[Step, ...]) -> None:
        super().__init__()
        self.job = job
        self.steps = steps


class JobFinished(Message):
    """The training thread is done with a job: it ended (`ended`), never started (`error`), or
    was skipped (`skipped`: a sweep member another process trains, or completed meanwhile)."""

    def __init__(
        self, job: Job, run: Run | None, ended: RunEnded | None, error: str = "", skipped: str = ""
    ) -> None:
        super().__init__()
        self.job = job
        self.run = run
        self.ended = ended
        self.error = error
        self.skipped = skipped


class QueueEdit(Message):
    """Remove queued job `number` (move == 0) or move it `move` places (negative: sooner)."""

    def __init__(self, number: int, move: int = 0) -> None:
        super().__init__()
        self.number = number
        self.move = move
