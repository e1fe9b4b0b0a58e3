"""Views drawn from the runs folder, redrawn when it changes, and only while on screen.

A run appears, goes, or rewrites its summary (status, results): the folder's signature changes.
The Runs and Studies views check it every REFRESH_S seconds and when the app says a run moved
on (`runs_changed`), but only while shown; `shown()` catches up on what a hidden view skipped.
"""

from __future__ import annotations

from pathlib import Path

from tui_trainer.runs.store import Run, list_runs

REFRESH_S = 2.0


def file_signature(path: Path) -> tuple[int, int] | None:
    """(mtime, size) of a file, None while it does not exist: changes when it is rewritten."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def folder_signature(runs: list[Run]) -> tuple:
    return tuple((run.id, file_signature(run.summary_path)) for run in runs)


class RunsFolderView:
    """Mixin for a view widget: implement `load_runs(runs)`; call `follow_runs_folder()` from
    `on_mount`. `reload()` redraws now (after a deletion, or a changed option)."""

    _signature: tuple | None = None

    def load_runs(self, runs: list[Run]) -> None:
        raise NotImplementedError

    def follow_runs_folder(self) -> None:
        self.app.runs_changed.subscribe(self, lambda _: self.reload_if_changed())
        self.set_interval(REFRESH_S, self.reload_if_changed)

    def shown(self) -> None:
        self.reload_if_changed()

    def reload_if_changed(self) -> None:
        if not self.display:  # a hidden view of the content switcher: reloaded when shown
            return
        runs = list_runs(self.app.runs_dir)
        signature = folder_signature(runs)
        if signature != self._signature:
            self._signature = signature
            self.load_runs(runs)

    def reload(self) -> None:
        self._signature = None
        self.reload_if_changed()
