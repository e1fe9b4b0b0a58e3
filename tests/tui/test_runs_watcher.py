"""The console off the disk: one watcher thread reads the runs folder (tui/runs_watcher.py), the
UI thread only draws what it posts, so keys answer however big or slow the folder is."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.support.many_runs import write_many_runs
from tests.support.tui import drive, wait_for, wait_for_scan
from tui_trainer import files
from tui_trainer.events import RunStatus
from tui_trainer.runs import store
from tui_trainer.tui import runs_watcher
from tui_trainer.tui.app import make_app

MISSING_DATA = Path("/nonexistent/caltech101")
RUNS = 500


def record_readers(monkeypatch, runs_dir: Path) -> list[tuple[str, threading.Thread]]:
    """Wrap what reads a run folder (every JSON and JSONL read goes through read_plain_text;
    the listing; the watcher's metrics tail; system.jsonl) to note the thread of each read
    under `runs_dir`."""
    calls: list[tuple[str, threading.Thread]] = []

    def wrap(owner, name: str) -> None:
        real = getattr(owner, name)

        def reader(*args, **kwargs):
            path = next((a for a in args if isinstance(a, Path)), runs_dir)
            if runs_dir in (path, *path.parents):
                calls.append((f"{name}({path.name})", threading.current_thread()))
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, reader)

    wrap(files, "read_plain_text")
    wrap(store, "list_runs")
    wrap(store, "read_samples")
    wrap(runs_watcher.MetricsTail, "read")
    return calls


def test_no_ui_thread_call_reads_a_run_folder(tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    ids = write_many_runs(runs_dir, RUNS, running=1)
    calls = record_readers(monkeypatch, runs_dir)
    app = make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)

    async def scenario(pilot):
        await wait_for_scan(pilot)
        assert len(app.runs_snapshot.records) == RUNS
        for key, view in (("1", "launch"), ("2", "watch"), ("3", "runs"), ("4", "studies")):
            await pilot.press(key)
            await wait_for_scan(pilot)
            assert app.main.current == view
        watch = app.main.view("watch")  # it followed the one running run on its own
        assert watch.following is not None and watch.following.id == ids[-1]
        assert watch.view.status == RunStatus.RUNNING and len(watch.view.epochs) == 2
        studies = app.main.view("studies")
        await wait_for(pilot, lambda: studies.report is not None, what="the report")
        await pilot.press("3")
        runs = app.main.view("runs")
        assert runs.table.row_count == RUNS
        await pilot.press("g")  # the seed groups: three seeds of each lr
        assert runs.grouped and runs.group_table.row_count == RUNS // 3 + 1

    drive(app, scenario)
    readers = {thread.name for _, thread in calls}
    assert calls and any(what.startswith("read(") for what, _ in calls)  # the metrics tail
    on_ui = [what for what, thread in calls if thread is threading.main_thread()]
    assert not on_ui, f"read on the UI thread: {on_ui[:5]} (readers: {readers})"


def test_a_key_answers_while_the_folder_is_rescanned(tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    write_many_runs(runs_dir, RUNS)
    scanning, release = threading.Event(), threading.Event()
    held = threading.Event()  # set: the next listing waits for `release`
    real = store.list_runs

    def slow_list_runs(folder):
        runs = real(folder)
        if held.is_set():
            scanning.set()
            release.wait(60)
        return runs

    monkeypatch.setattr(store, "list_runs", slow_list_runs)
    app = make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)

    async def scenario(pilot):
        await wait_for_scan(pilot)
        held.set()
        before = app.runs_scan
        app.watcher.rescan()
        await wait_for(pilot, scanning.is_set, what="a scan under way")
        try:
            await pilot.press("3")
            assert app.main.current == "runs"
            assert app.main.view("runs").table.row_count == RUNS  # from the last snapshot
            assert not release.is_set() and app.runs_scan == before  # the scan still waits
        finally:
            held.clear()
            release.set()
        await wait_for_scan(pilot)

    drive(app, scenario)
