"""What the runs watcher (tui/runs_watcher.py) knows of each run folder, as plain data the UI
thread may use freely: a record per run (config.json, summary.json, its status) and the snapshot
of the whole folder that one scan saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.events import RunStatus
from tui_trainer.runs.store import Run


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(mtime, size, inode) of a file, None while it does not exist: changes when it is
    rewritten (in place, or replaced whole as the run writer does)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


@dataclass(frozen=True, eq=False)
class RunRecord:
    """One run folder as last read: plain data the UI thread may use freely."""

    path: Path
    meta: dict[str, Any]
    summary: dict[str, Any]
    status: str
    signature: tuple = ()  # (config.json, summary.json, owner.json) file signatures

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def run(self) -> KnownRun:
        return KnownRun(self.path, self)

    def same(self, other: RunRecord | None) -> bool:
        """Reads the same as `other` (the signatures aside)."""
        mine = (self.meta, self.summary, self.status)
        return other is not None and mine == (other.meta, other.summary, other.status)


@dataclass(frozen=True, eq=False)
class KnownRun(Run):
    """A Run whose config.json, summary.json and status are served from the watcher's record:
    asking for them reads no file (the grouped table and the report ask for every run's). Its
    other files are read as any Run's. Equal to a Run of the same folder."""

    record: RunRecord | None = field(default=None, repr=False)

    def meta(self) -> dict[str, Any]:
        return dict(self.record.meta) if self.record is not None else super().meta()

    def summary(self) -> dict[str, Any]:
        return dict(self.record.summary) if self.record is not None else super().summary()

    def status(self, summary: dict[str, Any] | None = None) -> RunStatus | str:
        return self.record.status if self.record is not None else super().status(summary)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash((self.path,))


@dataclass(frozen=True)
class RunsSnapshot:
    """The runs folder's runs, oldest first, as one scan saw them."""

    runs_dir: Path
    records: tuple[RunRecord, ...] = ()
    version: int = 0  # grows with each change
    by_id: dict[str, RunRecord] = field(default_factory=dict, compare=False, repr=False)

    def get(self, run_id: str | None) -> RunRecord | None:
        return self.by_id.get(run_id) if run_id else None


def read_record(run: Run, old: RunRecord | None = None) -> RunRecord:
    """A folder's record; the files whose signature did not change since `old` are not reread."""
    signature = tuple(
        file_signature(p) for p in (run.config_path, run.summary_path, run.owner_path)
    )
    fresh = old is None or old.path != run.path
    if not fresh and signature == old.signature and old.status != RunStatus.RUNNING:
        return old
    meta = run.meta() if fresh or signature[0] != old.signature[0] else old.meta
    summary = run.summary() if fresh or signature[1] != old.signature[1] else old.summary
    record = RunRecord(run.path, meta, summary, run.status(summary), signature)
    return old if record.same(old) and signature == old.signature else record
