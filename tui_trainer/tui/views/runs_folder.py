"""Views drawn from the runs folder, redrawn when it changes, and only while on screen.

The runs watcher (tui/runs_watcher.py) reads the folder in its thread; the app keeps its latest
snapshot (`app.runs_snapshot`) and says when it changed (`runs_scanned`). The Runs and Studies
views redraw from the snapshot when it changed, but only while shown; `shown()` catches up on
what a hidden view skipped. Nothing here reads a file.
"""

from __future__ import annotations

from tui_trainer.tui.run_records import RunRecord, RunsSnapshot


class RunsFolderView:
    """Mixin for a view widget: implement `load_runs(records)`; call `follow_runs_folder()` from
    `on_mount`. `reload()` redraws now and asks the watcher for a fresh scan (after a
    deletion, or a changed option)."""

    _loaded: RunsSnapshot | None = None

    def load_runs(self, records: tuple[RunRecord, ...]) -> None:
        raise NotImplementedError

    def follow_runs_folder(self) -> None:
        self.app.runs_scanned.subscribe(self, lambda _: self.reload_if_changed())

    def shown(self) -> None:
        self.reload_if_changed()

    def reload_if_changed(self) -> None:
        if not self.display:  # a hidden view of the content switcher: reloaded when shown
            return
        snapshot = self.app.runs_snapshot
        if snapshot is not self._loaded:
            self._loaded = snapshot
            self.load_runs(snapshot.records)

    def reload(self) -> None:
        self._loaded = None
        self.reload_if_changed()
        self.app.watcher.rescan()
