"""The console's one reader of the runs folder: a thread that rescans it every SCAN_S seconds and
posts what changed to the app (tui/messages.py), so the UI thread never waits on a disk.

A scan lists the run folders and stats each one's config.json, summary.json and owner.json: a
folder whose files did not change keeps its record, so an idle scan of hundreds of runs reads no
file. A `running` run is judged again on every scan (its process may have died without a
write). The run the Watch view follows has its metrics.jsonl read from the byte offset the last
scan stopped at (only whole lines), and its system.jsonl tail reread when it changed. The
detached children this console started are polled here too (tui/detached_starts.py).
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_trainer.runs import store
from tui_trainer.runs.store import Run
from tui_trainer.tui.messages import (
    DetachedEnded,
    DetachedFound,
    FollowedRun,
    RunsScanned,
    SystemRead,
)
from tui_trainer.tui.run_records import RunRecord, RunsSnapshot, file_signature, read_record

SCAN_S = 1.0
SYSTEM_TAIL_BYTES = 256 * 1024  # the system pane's sparklines need the last samples only


class MetricsTail:
    """metrics.jsonl read from where the last read stopped: whole lines only; a file replaced
    or cut shorter starts over (`reset`)."""

    def __init__(self) -> None:
        self.offset = 0
        self.ident: tuple[int, int] | None = None

    def read(self, path: Path) -> tuple[list[dict[str, Any]], bool]:
        """(new rows, whether they start the file over)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            reset = self.ident is not None
            self.offset, self.ident = 0, None
            return [], reset
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # a FIFO planted in a shared folder never ends
                return [], False
            reset = (st.st_dev, st.st_ino) != self.ident or st.st_size < self.offset
            if reset:
                self.offset, self.ident = 0, (st.st_dev, st.st_ino)
            data = os.pread(fd, max(st.st_size - self.offset, 0), self.offset)
        finally:
            os.close(fd)
        data = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self.offset += len(data)
        return parse_rows(data), reset


def parse_rows(data: bytes) -> list[dict[str, Any]]:
    """metrics.jsonl's lines as Run.metrics keeps them: a line that is not a fitting row is
    skipped."""
    rows = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict) and store._numbers_fit(row):
            rows.append(row)
    return rows


class RunsWatcher:
    """The scanning thread. `post` delivers a message to the app from this thread (Textual's
    post_message is thread-safe); `poll_detached` runs after each scan, in this thread."""

    def __init__(
        self,
        runs_dir: Path,
        post: Callable[[Any], Any],
        poll_detached: Callable[[], None] = lambda: None,
        interval: float = SCAN_S,
    ) -> None:
        self.runs_dir = Path(runs_dir)
        self.post, self.poll_detached, self.interval = post, poll_detached, interval
        self._records: dict[str, RunRecord] = {}
        self._version = 0
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._started = 0  # scans begun
        self._follow: tuple[int, str | None, bool] = (0, None, False)  # (generation, run, rows)
        self._followed_gen = -1
        self._tail = MetricsTail()
        self._sent: RunRecord | None = None
        self._system: tuple | None = None
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None  # what stopped the last scan short, if anything

    # --- asked from the UI thread ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="runs-watcher", daemon=True)
        self._thread.start()

    def stop(self, wait_s: float = 5.0) -> None:
        """End the thread, waiting for a scan under way (the app's exit leaves no thread)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait_s)

    def rescan(self) -> int:
        """Scan now (not waiting for the interval); the number of the scan that will see the
        folder as it is at this call."""
        with self._lock:
            target = self._started + 1
        self._wake.set()
        return target

    def follow(self, run_id: str | None, rows: bool = True) -> int:
        """Follow `run_id`: its metrics rows (when `rows`) and its system samples, posted as
        FollowedRun / SystemRead with the generation returned here."""
        with self._lock:
            generation = self._follow[0] + 1
            self._follow = (generation, run_id, rows)
        self._wake.set()
        return generation

    # --- in the thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.scan()
                self.error = None
            except Exception as exc:  # noqa: BLE001 - a vanished mount: the next scan retries
                self.error = exc
            self._wake.wait(self.interval)

    def scan(self) -> None:
        with self._lock:
            self._started += 1
            number = self._started
        changed = False
        try:
            changed = self._scan_folder()
            self._scan_followed()
            self.poll_detached()
        finally:  # a scan cut short still says it is done, with what it knows
            records = tuple(self._records.values())
            snapshot = RunsSnapshot(self.runs_dir, records, self._version, dict(self._records))
            self.post(RunsScanned(number, snapshot, changed))

    def _scan_folder(self) -> bool:
        records: dict[str, RunRecord] = {}
        for run in store.list_runs(self.runs_dir):
            try:
                records[run.id] = read_record(run, self._records.get(run.id))
            except OSError:  # deleted while listed: gone from this scan
                continue
        old = self._records
        changed = records.keys() != old.keys() or any(
            record is not old.get(run_id) for run_id, record in records.items()
        )
        self._records = records
        if changed:
            self._version += 1
        return changed

    def _scan_followed(self) -> None:
        with self._lock:
            generation, run_id, rows_wanted = self._follow
        first = generation != self._followed_gen
        if first:
            self._followed_gen, self._tail = generation, MetricsTail()
            self._sent, self._system = None, None
        if run_id is None:
            return
        run = Run(self.runs_dir / run_id)
        record = self._records.get(run_id) or read_record(run, self._sent)
        rows, reset = self._tail.read(run.metrics_path) if rows_wanted else ([], False)
        if rows_wanted and (first or rows or reset or record is not self._sent):
            self._sent = record
            self.post(FollowedRun(generation, run_id, record, tuple(rows), first or reset))
        signature = file_signature(run.system_path)
        if first or signature != self._system:
            self._system = signature
            self.post(SystemRead(generation, run_id, run.system(SYSTEM_TAIL_BYTES)))


class WatcherReports:
    """The app's handlers of the watcher's messages (a mixin of TrainerApp): keep the latest
    snapshot, say when it changed, hand the rest to the Watch view and the detached starts."""

    def on_runs_scanned(self: Any, message: RunsScanned) -> None:
        if message.changed or message.snapshot.version != self.runs_snapshot.version:
            self.runs_snapshot = message.snapshot
            self.runs_scanned.publish(None)
        self.runs_scan = message.scan

    # These may land while the app closes, its screens gone: nothing to tell then.

    def on_followed_run(self: Any, message: FollowedRun) -> None:
        if self.screen_stack:
            self.main.view("watch").followed_run(message)

    def on_system_read(self: Any, message: SystemRead) -> None:
        if self.screen_stack:
            self.main.view("watch").system_read(message)

    def on_detached_found(self: Any, message: DetachedFound) -> None:
        if self.screen_stack:
            self.detached.found(message)

    def on_detached_ended(self: Any, message: DetachedEnded) -> None:
        if self.screen_stack:
            self.detached.ended(message)
