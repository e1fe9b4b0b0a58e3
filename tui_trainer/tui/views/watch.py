"""Watch: the live view of a run, the one this app trains (engine events) or one followed from
its folder (a headless run elsewhere, a detached start, or this app's last run resumed in another
shell; `f` finds those, `l` the run trained here). Stop on a followed run sends one SIGINT per
process to the owner.json holder on this host (a second would be `tui-trainer run`'s hard abort);
`r` resumes a run that stopped short of its end (tui/resume.py). The system pane reads the shown
run's system.jsonl, whichever process or host wrote it; each sample names its process. The runs
watcher (tui/runs_watcher.py) reads all of these in its thread: nothing here reads a file."""

from __future__ import annotations

import os
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Button, Log, ProgressBar, Static

from tui_trainer.events import RunStatus
from tui_trainer.runs import detached
from tui_trainer.runs.detached import DetachedStart
from tui_trainer.runs.owner import process_identity
from tui_trainer.runs.status import RESUMABLE
from tui_trainer.runs.store import Run
from tui_trainer.tui.detached_starts import pending_view
from tui_trainer.tui.live import PREPARING, RunView, status_text
from tui_trainer.tui.messages import FollowedRun, SystemRead
from tui_trainer.tui.resume import ask_resume
from tui_trainer.tui.screens.confirm import ConfirmScreen
from tui_trainer.tui.widgets.plots import EpochPlot, StepLossPlot
from tui_trainer.tui.widgets.system_pane import SystemPane

TICK_S = 1.0  # the ETA moves on
STATUS_CLASSES = ("-preparing", "-running", "-completed", "-interrupted", "-failed", "-idle")
STOP_LABEL, STOPPING_LABEL = "Stop", "Stopping..."


def signal_key(who: detached.StopTarget) -> tuple | None:
    """The process `who` names, told apart from a later one given the same pid (its start
    time); None when it is gone."""
    identity = process_identity(who.pid) if who.pid is not None else None
    return None if identity is None else (who.pid, tuple(sorted(identity.items())))


class WatchView(Vertical):
    TITLE = "Watch"
    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("l", "live", "This console's run"),
        Binding("f", "follow_newest", "Follow other"),
        Binding("r", "resume", "Resume"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view: RunView | None = None
        self.following: Run | None = None  # set: the view comes from this folder
        self.detached: DetachedStart | None = None  # set: the child whose runs are followed
        self._generation = 0  # of the watcher's follow request this view shows
        self._asked: tuple | None = None  # (run id, rows) last asked of the watcher
        self._log_shown = 0
        self._signalled: set[tuple] = set()  # `signal_key`s of the processes sent SIGINT here
        self._own_signature: tuple | None = None  # of our last run's files, when last seen
        self._resumable = False  # the shown run stopped short of its end: r resumes it

    def compose(self) -> ComposeResult:
        with Horizontal(id="status-row"):
            yield Static("", id="run-status")
            yield Button(STOP_LABEL, id="stop", variant="error", compact=True)
        yield ProgressBar(id="run-progress", show_eta=False)
        with Grid(id="plots"):
            yield StepLossPlot(id="step-plot")
            yield EpochPlot("acc", id="acc-plot")
            yield EpochPlot("loss", id="loss-plot")
        yield SystemPane(id="system-pane")
        yield Log(id="run-log", max_lines=200)

    @property
    def default_focus(self):
        # A leaf: focusing the view itself would restyle all of it (its :focus changes).
        return self.query_one(Log)

    def on_mount(self) -> None:
        self.app.live_changed.subscribe(self, self._live_changed)
        self.app.runs_scanned.subscribe(self, lambda _: self._runs_scanned())
        self.set_interval(TICK_S, self._tick)
        self._show(None)

    def shown(self) -> None:
        """The view came to the front: with nothing shown yet, pick a run to show."""
        if self.view is None and self.app.live is not None:
            self._show(self.app.live)
        else:
            self._runs_scanned()  # what a hidden view skipped
            self._tick()

    def show_run(self, run: Run) -> None:
        """Live when it is this app's run in training, else followed from its folder."""
        live = self.app.live
        if live is not None and live.run_id == run.id and self.app.current_job is not None:
            self.action_live()
        else:
            self.follow(run)

    # --- sources -------------------------------------------------------------------------------

    def follow(self, run: Run) -> None:
        """Show a run from its folder and keep following it."""
        self.following, self.detached = run, None
        if r := self.app.runs_snapshot.get(run.id):  # what is known now; the rows once read
            self._show(RunView.from_folder(r.id, r.meta, r.summary, r.status, ()))
        self._watch_shown()

    def follow_detached(self, start: DetachedStart) -> None:
        """A child this console started detached: "starting" until its run folder appears."""
        self.following, self.detached = None, start
        run = self.app.detached.run_of(start)
        if run is not None:
            self.detached_run_found(start, run)
        else:
            self._show(pending_view(start))

    def detached_run_found(self, start: DetachedStart, run: Run) -> None:
        """A (new) run folder of a detached child: follow it if this view follows that child."""
        if self.detached is start:
            self.follow(run)
            self.detached = start  # a sweep's next member is followed too

    def detached_ended(self, start: DetachedStart, status: str, why: str) -> None:
        """A detached child ended before it made a run folder: say so where it was shown."""
        if self.detached is start and self.following is None and self.view is not None:
            self.view.status = status
            self.view.log.append(why)
            self._show(self.view, "log")

    def action_live(self) -> None:
        live = self.app.live
        if live is None:
            self.notify("This console has not trained a run: start one on the Launch screen (1).")
            return
        if self.view is live and self.following is None and self.detached is None:
            self.notify(f"Already showing {live.run_id or live.label}, this console's run.")
            return
        self._own_signature = None
        elsewhere = self._resumed_elsewhere()
        if elsewhere is not None:  # our run, trained by another process now: that is live
            self.follow(elsewhere)
            return
        self.following, self.detached = None, None
        self._show(live)
        self.notify(f"Showing {live.run_id or live.label}, this console's run.")

    def action_follow_newest(self, quiet: bool = False) -> None:
        running = [r.run for r in self.app.runs_snapshot.records if r.status == RunStatus.RUNNING]
        live = self.app.live
        # the run this app trains now is `l`; one it trained before may be resumed elsewhere
        mine = live.run_id if live is not None and self.app.current_job is not None else None
        others = [r for r in running if r.id != mine]
        if others:
            self.follow(others[-1])
        elif not quiet:
            self.notify("No other run is training in the runs folder.")

    def _live_changed(self, what: str) -> None:
        if what == "new":  # a new job started here: watch it
            self.following, self.detached = None, None
        if self.following is None and self.detached is None and self.app.live is not None:
            self._show(self.app.live, what)

    def _tick(self) -> None:  # the ETA moves on
        if self.display and self.view is not None and not self.view.finished:
            self._show_status()

    def _runs_scanned(self) -> None:
        """A new snapshot: a run to show when none is, or our last run trained elsewhere now."""
        if not self.display:  # hidden: `shown` catches up
            return
        if self.following is None and self.view is None:
            self.action_follow_newest(quiet=True)
        elif self.view is self.app.live and (elsewhere := self._resumed_elsewhere()):
            self.follow(elsewhere)  # `run --resume` of our run in another shell

    def _resumed_elsewhere(self) -> Run | None:
        """The run this app trained last, when another process trains its folder now; judged
        again only when its files changed."""
        live = self.app.live
        if live is None or not live.run_id or not live.finished or self.app.current_job:
            return None
        record = self.app.runs_snapshot.get(live.run_id)
        if record is None or (record.id, record.signature) == self._own_signature:
            return None
        self._own_signature = (record.id, record.signature)
        # a snapshot from before our run ended still says running, in our own name
        other = record.summary.get("pid") != os.getpid()
        return record.run if other and record.status == RunStatus.RUNNING else None

    def _watch_shown(self) -> None:
        """Ask the watcher for the shown run's system samples, and its rows if followed."""
        view = self.view
        run_id = self.following.id if self.following is not None else (view and view.run_id)
        wanted = (run_id or None, self.following is not None)
        if wanted != self._asked or self.following is not None:
            self._asked = wanted
            self._generation = self.app.watcher.follow(*wanted)
            if run_id is None:
                self.query_one(SystemPane).show([], False)

    def followed_run(self, message: FollowedRun) -> None:
        """The watcher read the followed run: a new view from the start, or rows appended."""
        if message.generation != self._generation or self.following is None:
            return
        r, view = message.record, self.view
        if message.fresh or view is None or view.source != "disk" or view.run_id != message.run_id:
            self._show(RunView.from_folder(r.id, r.meta, r.summary, r.status, message.rows))
            return
        if (r.summary, r.status) != (view.summary, view.status):
            view.note_summary(r.summary, r.status, r.meta)
        view.add_rows(message.rows)
        self._show(view)  # the same view: its new rows and log lines are drawn

    def system_read(self, message: SystemRead) -> None:
        """The shown run's system samples, read because its system.jsonl changed."""
        if message.generation == self._generation:
            in_console = self.view is not None and self.view.source == "app"
            self.query_one(SystemPane).show(message.samples, in_console)

    # --- drawing -------------------------------------------------------------------------------

    def _show(self, view: RunView | None, what: str = "all") -> None:
        if view is not self.view:
            what, self._log_shown = "all", 0
            self.query_one(Log).clear()
        self.view = view
        self._show_status()
        if self.following is None:
            self._watch_shown()  # the system pane of the run shown (none yet: cleared)
        if view is None:
            return
        if what in ("all", "steps"):
            self.query_one(StepLossPlot).replot(view.steps)
        if what in ("all", "epoch", "status"):
            self.query_one("#acc-plot", EpochPlot).replot(view.epochs)
            self.query_one("#loss-plot", EpochPlot).replot(view.epochs)
        if what != "steps":
            self._show_log(view)

    def _show_log(self, view: RunView) -> None:
        log = self.query_one(Log)
        lines = list(view.log)
        if self._log_shown > len(lines):  # the deque rotated: start over
            log.clear()
            self._log_shown = 0
        log.write_lines(lines[self._log_shown :])
        self._log_shown = len(lines)

    def _show_status(self) -> None:
        status = self.query_one("#run-status", Static)
        view = self.view
        status.remove_class(*STATUS_CLASSES)
        stop = self.query_one("#stop", Button)
        stop.display = bool(view and not view.finished)
        self._show_stopping(stop, bool(stop.display and view and view.source == "disk"))
        if view is None:
            self._note_resumable(None)
            self.query_one(ProgressBar).update(total=1, progress=0)  # not an endless animation
            status.update(
                "Nothing is training. Start a run on the Launch screen (1), or pick one in "
                "Runs (3) and press w to watch it."
            )
            status.add_class("-idle")
            return
        status.add_class(f"-{view.status}" if f"-{view.status}" in STATUS_CLASSES else "-failed")
        self._note_resumable(view)
        preparing = view.status == PREPARING  # an indeterminate (moving) bar meanwhile
        bar = self.query_one(ProgressBar)
        bar.update(total=None if preparing else 1000, progress=round(view.fraction() * 1000))
        status.update(status_text(view, len(self.app.queue)))

    # --- resuming ------------------------------------------------------------------------------

    def _note_resumable(self, view: RunView | None) -> None:
        resumable = bool(view and view.run_id and view.finished and view.status in RESUMABLE)
        if view is not None and view.source == "app" and self.app.current_job is not None:
            resumable = False  # its end is told before the training thread has let it go
        if resumable != self._resumable:
            self._resumable = resumable
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self._resumable if action == "resume" else True

    def run_at_hand(self) -> Run | None:
        """The run folder of the run shown, once it has one."""
        view = self.view
        return Run(self.app.runs_dir / view.run_id) if view and view.run_id else None

    def action_resume(self) -> None:
        run = self.run_at_hand()
        if run is not None:
            ask_resume(self.app, run)

    # --- stopping ------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "stop":
            self.action_stop()

    def action_stop(self) -> None:
        view = self.view
        if view is not None and view.source == "disk" and not view.finished:
            self._stop_followed()
            return
        job = self.app.current_job
        if job is None:
            self.notify("No run is training in this app.")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.app.stop_current()

        self.app.push_screen(
            ConfirmScreen(f"Stop {job.label}? It ends as interrupted, keeping its checkpoint."),
            answer,
        )

    def _stop_target(self) -> tuple[detached.StopTarget, str] | None:
        """The process training the followed run (or the detached child that has not made its
        folder yet), and what to call it; None when there is none."""
        if self.following is not None:
            return detached.stop_target(self.following), self.following.id
        if self.detached is not None and self.detached.exit_code() is None:
            pid = self.detached.pid  # this console's child, not reaped: the pid is still its
            return detached.StopTarget(pid, "", True), self.detached.label
        return None

    def _show_stopping(self, stop: Button, followed: bool) -> None:
        """The Stop button says so while the shown run's process has had its SIGINT."""
        target = self._stop_target() if followed and self._signalled else None
        stopping = target is not None and signal_key(target[0]) in self._signalled
        stop.set_class(stopping, "-stopping")
        label = STOPPING_LABEL if stopping else STOP_LABEL
        if str(stop.label) != label:
            stop.label = label

    def _stop_followed(self) -> None:
        """SIGINT to the process of `_stop_target`, after a yes, once: a second would be the
        child's hard abort. A process of another host is only named."""
        target = self._stop_target()
        if target is None:
            return
        who, what = target
        if not who.stoppable:
            self.notify(f"Cannot stop it from here: {who.why}.", severity="warning")
            return
        if signal_key(who) in self._signalled:
            self.notify(f"{what}: already stopping (SIGINT sent).")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._interrupt(who, what)

        question = f"Stop {what} (pid {who.pid})? It ends as interrupted, keeping its checkpoint."
        self.app.push_screen(ConfirmScreen(question), answer)

    def _interrupt(self, who: detached.StopTarget, what: str) -> None:
        key = signal_key(who)  # before the signal: the process it names, not a later one
        if key is not None and key in self._signalled:
            self.notify(f"{what}: already stopping (SIGINT sent).")
            return
        try:
            detached.interrupt(who)
        except (ProcessLookupError, ValueError):
            self.notify(f"{what} already ended.")
            return
        if key is not None:
            self._signalled.add(key)
        self.notify(f"Stopping {what} (SIGINT to pid {who.pid})...")
        self._show_status()
