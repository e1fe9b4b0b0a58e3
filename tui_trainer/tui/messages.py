"""Messages the training thread and the runs watcher post to the app, and the app's notes to its
screens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

from tui_trainer.events import Event, RunEnded, Step

if TYPE_CHECKING:
    from tui_trainer.runs.detached import DetachedStart
    from tui_trainer.runs.store import Run
    from tui_trainer.tui.jobs import Job
    from tui_trainer.tui.run_records import RunRecord, RunsSnapshot


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


# --- from the runs watcher's thread (tui/runs_watcher.py) -----------------------------------------


class RunsScanned(Message):
    """Scan number `scan` is done: `snapshot` is the runs folder now; `changed` when a run
    appeared, went, or changed (its config, summary, owner or status) since the last scan."""

    def __init__(self, scan: int, snapshot: RunsSnapshot, changed: bool) -> None:
        super().__init__()
        self.scan = scan
        self.snapshot = snapshot
        self.changed = changed


class FollowedRun(Message):
    """The followed run (`generation`: which follow request) as read now: its record, and the
    metrics rows appended since the last message (`fresh`: from the file's start; drop what
    was shown)."""

    def __init__(
        self,
        generation: int,
        run_id: str,
        record: RunRecord,
        rows: tuple[dict[str, Any], ...],
        fresh: bool,
    ) -> None:
        super().__init__()
        self.generation = generation
        self.run_id = run_id
        self.record = record
        self.rows = rows
        self.fresh = fresh


class SystemRead(Message):
    """The followed run's system.jsonl samples (its tail), read because the file changed."""

    def __init__(self, generation: int, run_id: str, samples: list[Any]) -> None:
        super().__init__()
        self.generation = generation
        self.run_id = run_id
        self.samples = samples


class DetachedFound(Message):
    """A detached child of this console made a (new) run folder."""

    def __init__(self, start: DetachedStart, run: Run) -> None:
        super().__init__()
        self.start = start
        self.run = run


class DetachedEnded(Message):
    """A detached child ended (exit `code`); `tail`: its log's last lines when it ended before
    making a run folder, else ""."""

    def __init__(self, start: DetachedStart, code: int, made_a_run: bool, tail: str) -> None:
        super().__init__()
        self.start = start
        self.code = code
        self.made_a_run = made_a_run
        self.tail = tail
