"""Resume from the console: `r` on an interrupted, crashed, stale or failed run (Runs, run
detail, Watch once the run has stopped) and "Resume RUN" in the command palette.

The same refusals as `tui-trainer run --resume ID` (runs/resume.check_resumable: a completed or
running run is refused in one line), then the Start dialog asks where: in this console (the
training thread, queued behind a run in training) or detached (a `tui-trainer run --resume ID`
child). Either way `runs.launch.resume_run` checks again under the run's lock, so two consoles
resuming one run at once cannot both train it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand

from tui_trainer.config import RunConfig
from tui_trainer.errors import UserError
from tui_trainer.runs.resume import check_resumable
from tui_trainer.runs.status import RESUMABLE
from tui_trainer.runs.store import Run
from tui_trainer.train.estimate import estimate
from tui_trainer.tui.jobs import Job, StartChoice, StartMode
from tui_trainer.tui.screens.start_choice import StartChoiceScreen

if TYPE_CHECKING:
    from textual.screen import Screen

RESUME_HELP = "continue it from its last finished epoch, in its own folder (here or detached)"


def resumable(run: Run | None) -> bool:
    """`run` can continue (its status read now: a summary file)."""
    return run is not None and run.status() in RESUMABLE


def resuming_here(app: Any, run_id: str) -> bool:
    """The console trains or has queued a resume of `run_id` (or trains that run)."""
    live = app.live.run_id if app.live is not None and app.current_job is not None else ""
    jobs = [app.current_job, *app.queue.jobs]
    return run_id == live or any(job is not None and job.resume == run_id for job in jobs)


def submit_resume(app: Any, run: Run, mode: StartMode) -> Job | None:
    """Continue `run` in this console (now when idle, else queued) or detached."""
    if mode != StartMode.IN_CONSOLE:
        app.detached.start_resume(run.id)
        return None
    meta = run.meta()
    config = RunConfig.from_dict(meta.get("config") or {})
    preset = str(meta.get("preset", ""))
    return app.enqueue(Job(next(app.job_numbers), preset, {}, config, resume=run.id))


def run_at_hand(app: Any, screen: Screen) -> Run | None:
    """The run `r` would act on: that of a screen or view with a `run_at_hand` (run detail,
    the Runs cursor's, Watch's)."""
    holder = app.main.view(app.main.current) if screen is app.main else screen
    pick = getattr(holder, "run_at_hand", None)
    return pick() if pick is not None else None


def resume_commands(app: Any, screen: Screen) -> Iterator[SystemCommand]:
    """The command palette's "Resume RUN" for the run at hand, when it can continue."""
    run = run_at_hand(app, screen)
    if run is not None and resumable(run):
        yield SystemCommand(f"Resume {run.id}", RESUME_HELP, lambda: ask_resume(app, run))


def ask_resume(app: Any, run: Run) -> None:
    """Refuse in one line, or ask where to resume `run` and submit it (app: the TrainerApp)."""
    if resuming_here(app, run.id):
        app.notify(f"{run.id} is training, stopping or queued in this console: wait for its end.")
        return
    try:
        check_resumable(run)
        meta = run.meta()
        config = RunConfig.from_dict(meta.get("config") or {})
    except UserError as exc:
        app.notify(str(exc), title="Cannot resume", severity="warning")
        return
    summary = run.summary()
    done = int(summary.get("epochs_done") or 0)
    left = max(config.epochs - done, 0)
    changes = (
        f"{run.status(summary)} after {done} of {config.epochs} epochs: the remaining {left} "
        "train in its own folder, from its last finished epoch"
    )
    data_dir = Path(meta.get("data_dir") or app.data_dir)  # the data the run recorded

    def chosen(choice: StartChoice | None) -> None:
        if choice is not None:
            app.start_mode = choice.mode
            submit_resume(app, run, choice.mode)

    current = app.current_job
    dialog = StartChoiceScreen(
        run.id,
        app.start_mode,
        current.label if current else "",
        changes=changes,
        estimate=lambda: estimate([(config, left)], data_dir).describe(),
        verb="Resume",
    )
    app.push_screen(dialog, chosen)
