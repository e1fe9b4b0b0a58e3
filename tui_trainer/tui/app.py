"""The console app: five views (Launch, Watch, Runs, Studies, Preview), a training thread, a queue.

`make_app` is the one factory: the CLI calls it with the user's options, tests call it with a
fixture runs folder and, where training is not the point, a scripted engine. An engine is any
callable with `runs.launch.start_run`'s signature.

Start trains in this console (the training thread, one run at a time, the rest queued) or
detached (a `tui-trainer run`/`sweep` child that outlives the console: tui/detached_starts.py).
SIGHUP (the terminal closed: a dropped SSH connection) and SIGTERM are a confirmed quit
(tui/hangup.py): the run in training stops cleanly as `interrupted`, summary.json's `stopped`
says why, the queue is dropped, and the app exits with 128 + the signal's number.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, get_current_worker

from tui_trainer.config import Preset, RunConfig, list_presets
from tui_trainer.data.layout import find_layout, resolve_data_dir
from tui_trainer.errors import UserError
from tui_trainer.events import Epoch, Log, RunEnded, RunStarted, RunStatus
from tui_trainer.runs.status import SKIPPED
from tui_trainer.runs.store import Run, default_runs_dir
from tui_trainer.studies.search_spec import search_paths
from tui_trainer.studies.sweep_file import Sweep, SweepMember, sweep_paths
from tui_trainer.tui import hangup
from tui_trainer.tui.detached_starts import DetachedStarts
from tui_trainer.tui.jobs import Job, JobQueue, StartMode, lower_thread_priority, train_job
from tui_trainer.tui.live import RunView
from tui_trainer.tui.messages import EngineEvent, JobFinished, QueueEdit, StepBatch
from tui_trainer.tui.quitting import Quitting
from tui_trainer.tui.relay import EventRelay
from tui_trainer.tui.resume import resume_commands
from tui_trainer.tui.run_records import RunsSnapshot
from tui_trainer.tui.runs_watcher import RunsWatcher, WatcherReports
from tui_trainer.tui.screens.confirm import ConfirmScreen
from tui_trainer.tui.screens.main import MainScreen
from tui_trainer.tui.screens.start_choice import StartChoiceScreen

# runs.launch.start_run(config, *, preset, overrides, data_dir, runs_dir, on_event, stop, name,
#   extra_meta) -> (Run, RunEnded), (None, RunEnded) when stopped before training (no folder),
#   or anything with that signature (tests script one).
Engine = Callable[..., Any]
STYLES = Path(__file__).parent / "styles"


def find_data_problem(data_dir: Path) -> str | None:
    """None when the dataset is there; else where we looked and how to fix it."""
    try:
        find_layout(data_dir)
    except UserError as exc:
        return f"No dataset: {exc}"
    return None


def freeze_imports() -> None:
    """Move everything alive now (torch's import-time objects, hundreds of thousands) out of
    the cyclic GC's reach: a full collection then takes milliseconds instead of a few hundred
    of them, and it runs holding the GIL, so the UI froze while the training thread paid it."""
    gc.freeze()


def _from_launch(name: str) -> Engine:
    """runs.launch's `name` (start_run, resume_run), imported when first called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        from tui_trainer.runs import launch

        freeze_imports()  # torchvision and the engine's modules are in memory now
        return getattr(launch, name)(*args, **kwargs)

    return call


class TrainerApp(Quitting, WatcherReports, App[None]):
    TITLE = "tui-trainer"
    CSS_PATH = [
        STYLES / f"{name}.tcss"
        for name in ("app", "launch", "watch", "runs", "studies", "preview", "start_choice")
    ]
    BINDINGS = [
        # 1-5 are text in a focused field; F1-F5 switch views from any focus (the key bar
        # shows whichever of the two works at the moment).
        Binding("1,f1", "show_view('launch')", "Launch"),
        Binding("2,f2", "show_view('watch')", "Watch"),
        Binding("3,f3", "show_view('runs')", "Runs"),
        Binding("4,f4", "show_view('studies')", "Studies"),
        Binding("5,f5", "show_view('preview')", "Preview"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        data_dir: Path,
        runs_dir: Path,
        device: str | None = None,
        engine: Engine | None = None,
        presets: list[Preset] | None = None,
        sweeps: list[str] | None = None,
        searches: list[str] | None = None,
    ) -> None:
        super().__init__(driver_class=hangup.HangupSafeDriver)
        self.data_dir, self.runs_dir, self.device = Path(data_dir), Path(runs_dir), device
        self.engine: Engine = engine or _from_launch("start_run")
        self.resumer: Engine = _from_launch("resume_run")  # tests may set a stand-in
        self.presets = presets if presets is not None else list_presets()
        self.sweeps = sweeps if sweeps is not None else list(sweep_paths())
        self.searches = searches if searches is not None else list(search_paths())
        self.data_problem: str | None = None
        self.data_checked = False  # set once the check (in a thread) has run
        self.queue = JobQueue()
        self.current_job: Job | None = None
        self.current_worker: Worker | None = None
        self.live: RunView | None = None  # the view of the run this app trains (or trained last)
        self.quitting = False
        self.stop_reason = ""  # why the run was stopped, when a signal stopped it
        self.exit_code_on_quit = 0
        self.start_mode = StartMode.IN_CONSOLE  # the last choice of Start, for this session
        self.start_parallel: int | None = None  # the last "N in parallel" chosen, if any
        self.detached = DetachedStarts(self)
        # The one reader of the runs folder, in its own thread; what it saw last.
        self.watcher = RunsWatcher(self.runs_dir, self.post_message, self.detached.poll)
        self.runs_snapshot = RunsSnapshot(self.runs_dir)
        self.runs_scan = 0  # the number of the last scan handled here
        self._restore_signals = lambda: None
        self.job_numbers = itertools.count(1)
        # Screens subscribe to these instead of the app reaching into them.
        self.live_changed: Signal[str] = Signal(self, "live_changed")
        self.queue_changed: Signal[None] = Signal(self, "queue_changed")
        # runs_changed: a run moved on here (the watcher rescans now); runs_scanned: the
        # watcher's snapshot of the runs folder changed (app.runs_snapshot).
        self.runs_changed: Signal[None] = Signal(self, "runs_changed")
        self.runs_scanned: Signal[None] = Signal(self, "runs_scanned")
        self.data_changed: Signal[None] = Signal(self, "data_changed")

    def on_mount(self) -> None:
        self._restore_signals = hangup.install(self._on_stop_signal)
        self.runs_changed.subscribe(self, lambda _: self.watcher.rescan())
        self.watcher.start()
        self._check_data()

    def on_unmount(self) -> None:
        self.watcher.stop()
        self._restore_signals()

    @work(thread=True, group="data-check")
    def _check_data(self) -> None:
        """In a thread: listing a big (or network) data folder stays off the UI thread; the
        launch view says "checking" meanwhile. It imports no torch: nothing does before the
        first training, LR finder or preview (tests/unit/test_startup.py)."""
        problem = find_data_problem(self.data_dir)
        self.call_from_thread(self._data_checked, problem)

    def _data_checked(self, problem: str | None) -> None:
        freeze_imports()  # the console's modules are in memory now
        self.data_problem, self.data_checked = problem, True
        self.data_changed.publish(None)

    # --- starting and queueing ---------------------------------------------------------------

    def submit(
        self,
        preset: str,
        overrides: dict[str, str],
        config: RunConfig,
        mode: StartMode = StartMode.IN_CONSOLE,
    ) -> Job | None:
        """Train now when idle (and show it), else join the queue; or start it detached."""
        if mode == StartMode.DETACHED:
            self.detached.start_run(preset, overrides)
            return None
        return self.enqueue(Job(next(self.job_numbers), preset, overrides, config))

    def enqueue(self, job: Job) -> Job:
        """Train `job` now when idle (and show it), else add it to the queue."""
        if self.current_job is None:
            self._start(job)
            self.action_show_view("watch")
        else:
            self.queue.add(job)
            self.notify(f"Queued {job.label} ({len(self.queue)} waiting).")
        self.queue_changed.publish(None)
        return job

    def submit_sweep(self, sweep: Sweep, members: list[SweepMember]) -> list[Job]:
        """Queue a sweep's members in order (the first trains now when idle)."""
        since = time.time()
        jobs = [
            Job(next(self.job_numbers), m.preset, m.overrides, m.config, sweep.name, m.name)
            for m in members
        ]
        for job, member in zip(jobs, members, strict=True):
            job.plan, job.plan_member, job.since = sweep, member, since
        return self.submit_jobs(jobs, f"{sweep.name}: {len(jobs)} member(s) queued.")

    def submit_jobs(self, jobs: list[Job], note: str) -> list[Job]:
        """Queue `jobs` in order (the first trains now when idle), then say `note`."""
        if not jobs:
            return jobs
        for job in jobs:
            self.queue.add(job)
        if self.current_job is None:
            self._start(self.queue.pop_next())  # type: ignore[arg-type]
            self.action_show_view("watch")
        self.notify(note)
        self.queue_changed.publish(None)
        return jobs

    def show_sweep(self, name: str) -> None:
        """The Launch view with sweep `name` picked (from the Studies view)."""
        self.action_show_view("launch")
        self.main.view("launch").pick(f"sweep:{name}")

    def _start(self, job: Job) -> None:
        self.current_job = job
        self.live = RunView(label=job.label)
        self.live.log.append(f"preparing {job.label}: decoding images, building the model")
        self.current_worker = self._train(job)
        self.live_changed.publish("new")

    @work(thread=True, exclusive=False, group="training", exit_on_error=False)
    def _train(self, job: Job) -> None:
        """The training thread. Its stop event is this worker's cancellation event, which
        `stop_current` and the app's exit (`workers.cancel_all`) both set."""
        stop = get_current_worker().cancelled_event
        lower_thread_priority()
        relay = EventRelay(self.post_message, job.number)
        run = ended = None
        error = skipped = ""
        try:
            engine = partial(self.resumer, device=self.device) if job.resume else self.engine
            run, ended, skipped = train_job(
                job, engine, self.data_dir, self.runs_dir, on_event=relay, stop=stop
            )
        except UserError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported in the UI; the queue goes on
            error = f"{type(exc).__name__}: {exc}"
        finally:
            relay.flush()
            if run is not None and ended is not None and self.stop_reason:
                hangup.record_stop_reason(run, ended, self.stop_reason)
            self.post_message(JobFinished(job, run, ended, error, skipped))

    def stop_current(self) -> None:
        if self.current_worker is not None and self.live is not None:
            self.current_worker.cancel()
            self.live.log.append("stopping after the current step or images decoding...")
            self.live_changed.publish("log")

    def on_queue_edit(self, message: QueueEdit) -> None:
        if message.move:
            self.queue.move(message.number, message.move)
        else:
            self.queue.remove(message.number)
        self.queue_changed.publish(None)

    # --- what the training thread reports ------------------------------------------------------

    def _is_current(self, job: int) -> bool:
        return self.current_job is not None and self.current_job.number == job

    def on_engine_event(self, message: EngineEvent) -> None:
        if not self._is_current(message.job) or self.live is None:
            return
        self.live.apply(message.event)
        match message.event:
            case Epoch():
                self.live_changed.publish("epoch")
                self.runs_changed.publish(None)
            case Log():
                self.live_changed.publish("log")
            case RunStarted() | RunEnded():  # the runs list shows the run, then how it ended
                self.live_changed.publish("status")
                self.runs_changed.publish(None)
            case _:
                self.live_changed.publish("status")

    def on_step_batch(self, message: StepBatch) -> None:
        if self._is_current(message.job) and self.live is not None:
            self.live.apply_steps(message.steps)
            self.live_changed.publish("steps")

    def on_job_finished(self, message: JobFinished) -> None:
        job = message.job
        if message.skipped and self.live is not None:
            self.live.status = SKIPPED
            self.live.log.append(f"skipped {job.label}: {message.skipped}")
            self.notify(message.skipped, title=f"{job.label} skipped")
        elif message.error and self.live is not None:
            self.live.status = RunStatus.FAILED
            self.live.log.append(f"did not start: {message.error}")
            self.notify(message.error, title=f"{job.label} did not start", severity="error")
        elif message.ended is not None:
            severity = "information" if message.ended.status == RunStatus.COMPLETED else "warning"
            self.notify(f"{job.label} ended {message.ended.status}.", severity=severity)
        self.current_job, self.current_worker = None, None
        self.live_changed.publish("status")
        self.runs_changed.publish(None)
        if self.quitting:
            self.exit(return_code=self.exit_code_on_quit)
            return
        upcoming = self.queue.pop_next()
        if upcoming is not None:
            self._start(upcoming)
        self.queue_changed.publish(None)

    # --- navigation and quitting ---------------------------------------------------------------

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    def action_show_view(self, name: str) -> None:
        """Show a view by name; from a screen pushed over the main one (detail, compare) too."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.main.show_view(name)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette's commands: Textual's, and "Resume RUN" for the run at hand."""
        yield from super().get_system_commands(screen)
        yield from resume_commands(self, screen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A question on screen (stop? delete?) is answered before going anywhere else.
        if action == "show_view" and isinstance(self.screen, ConfirmScreen | StartChoiceScreen):
            return False
        return True

    def show_run(self, run: Run) -> None:
        """Show a run in the watch view: live if this app trains it, else from its folder."""
        self.action_show_view("watch")
        self.main.view("watch").show_run(run)

    def preview_image(self, path: Path | str) -> None:
        """Show an image (absolute, or relative to the data folder or its class folders) and
        fresh augmentations of it in the Preview view."""
        self.main.view("preview").open(path)
        self.action_show_view("preview")


def make_app(
    data_dir: Path | str | None = None,
    runs_dir: Path | str | None = None,
    device: str | None = None,
    engine: Engine | None = None,
    presets: list[Preset] | None = None,
    sweeps: list[str] | None = None,
    searches: list[str] | None = None,
) -> TrainerApp:
    """The app with the CLI's defaults for whatever is not given ($TUI_TRAINER_DATA/RUNS)."""
    return TrainerApp(
        data_dir=resolve_data_dir(data_dir),
        runs_dir=Path(runs_dir) if runs_dir else default_runs_dir(),
        device=device,
        engine=engine,
        presets=presets,
        sweeps=sweeps,
        searches=searches,
    )
