"""The console off the disk: one watcher thread reads the runs folder (tui/runs_watcher.py), the
UI thread only draws what it posts, so keys answer however big or slow the folder is."""

from __future__ import annotations

import json
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


def test_the_metrics_tail_reads_whole_new_lines_and_starts_over_on_a_new_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = runs_watcher.MetricsTail()
    assert tail.read(path) == ([], False)  # not there yet
    step = {"kind": "step", "epoch": 1, "step": 1, "loss": 2.0}
    path.write_text(json.dumps(step) + "\n" + '{"kind": "step", "ep')  # a line being written
    assert tail.read(path) == ([step], True)
    with path.open("a") as fh:
        fh.write('och": 1, "step": 2, "loss": 1.5}\n')
    assert tail.read(path) == ([{**step, "step": 2, "loss": 1.5}], False)
    assert tail.read(path) == ([], False)  # nothing new
    replaced = tmp_path / "new.jsonl"
    replaced.write_text(json.dumps({**step, "loss": 9.0}) + "\n")
    replaced.replace(path)  # rewritten whole (atomically): read from its start
    assert tail.read(path) == ([{**step, "loss": 9.0}], True)


def test_watch_appends_the_rows_a_followed_run_writes(tmp_path):
    runs_dir = tmp_path / "runs"
    (run_id,) = write_many_runs(runs_dir, 1, running=1)
    app = make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)
    metrics = runs_dir / run_id / "metrics.jsonl"

    async def scenario(pilot):
        await wait_for_scan(pilot)
        await pilot.press("2")  # Watch follows the running run on its own
        watch = app.main.view("watch")
        await wait_for(pilot, lambda: watch.view is not None and watch.view.epochs)
        shown = watch.view
        assert [row["epoch"] for row in shown.epochs] == [1, 2]
        row = {**shown.epochs[-1], "epoch": 3, "val_acc": 0.9}
        with metrics.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        await wait_for_scan(pilot)
        assert watch.view is shown  # appended to, not rebuilt from the whole file
        assert [row["epoch"] for row in shown.epochs] == [1, 2, 3]
        assert shown.best_val_acc == 0.9 and shown.best_epoch == 3

    drive(app, scenario)
