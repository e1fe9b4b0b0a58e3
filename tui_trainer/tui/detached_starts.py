"""The detached children this console started, followed until they end.

Start "detached" spawns a `tui-trainer run` (or `sweep`, or `tune` for a search) child
(runs/detached.py). Until the child has created a run folder (the first decode can take minutes)
the Watch view shows "starting detached"; once it has, the Watch view follows the folder as it
follows any run started elsewhere, and for a sweep it moves on to each next member's folder
while it still follows that child. A sweep started "N in parallel" trains its members in
processes the child starts: the Watch view follows the member that started last (they rewrite
the child's launch record: DetachedStart.find_run), and the Launch view's sweep panel shows
every member live from its claim. The child outlives this console: nothing here waits for it,
and a console started later finds its run as `running` in the runs folder (Watch: f). The
children are polled in the runs watcher's thread (tui/runs_watcher.py), which posts what it
finds to the app.
"""

from __future__ import annotations

import threading
from typing import Any

from tui_trainer.events import RunStatus
from tui_trainer.runs import detached
from tui_trainer.runs.detached import (
    DetachedStart,
    resume_command,
    run_command,
    sweep_command,
    tune_command,
)
from tui_trainer.runs.store import Run
from tui_trainer.studies.sweep_file import Sweep
from tui_trainer.tui.live import RunView
from tui_trainer.tui.messages import DetachedEnded, DetachedFound

# A child's exit code when it ended before making a run folder (cli/app.py's codes): 0 a sweep
# with nothing left to run, 3 one whose members left all train in other processes (nothing for
# this child to do: its part is done, the panel follows them), 130 stopped while preparing;
# anything else (2: bad input) failed.
ENDED_BEFORE_A_RUN = {0: RunStatus.COMPLETED, 3: RunStatus.COMPLETED, 130: RunStatus.INTERRUPTED}


def command_text(command: list[str]) -> str:
    """The command as a person would type it: `tui-trainer run scratch --set lr=0.01`, without
    the interpreter and the console's own --data and --runs-dir."""
    words = list(command)
    if words[1:3] == ["-m", "tui_trainer"]:
        words = ["tui-trainer", *words[3:]]
    shown: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("--data", "--runs-dir"):
            skip = True
        else:
            shown.append(word)
    return " ".join(shown)


def pending_view(start: DetachedStart) -> RunView:
    """What the Watch view shows of a child that has no run folder yet."""
    view = RunView(label=f"{start.label} (detached, pid {start.pid})", source="disk")
    view.note = f"starting detached: decoding images, building the model (log {start.log_path})"
    view.log.append(f"started detached (pid {start.pid}): {command_text(start.command)}")
    view.log.append(f"its output: {start.log_path} (console.log in the run folder once it exists)")
    return view


class DetachedStarts:
    """Children of this console still running, and the newest run folder each has made."""

    def __init__(self, app: Any) -> None:  # the TrainerApp (which imports this module)
        self.app = app
        self.children: dict[int, DetachedStart] = {}  # by pid
        self.runs: dict[int, str] = {}  # pid -> the newest run id the UI was told of
        self._seen: dict[int, str] = {}  # the same, as the watcher's thread saw it
        self._lock = threading.Lock()  # children: added on the UI thread, polled in the watcher

    def start_run(self, preset: str, overrides: dict[str, str]) -> DetachedStart | None:
        """A `tui-trainer run PRESET --set ...` child."""
        app = self.app
        cmd = run_command(preset, overrides, data_dir=app.data_dir, runs_dir=app.runs_dir)
        changes = " ".join(f"{k}={v}" for k, v in overrides.items())
        return self.start(f"{preset} {changes}".strip(), cmd)

    def start_resume(self, run_id: str) -> DetachedStart | None:
        """A `tui-trainer run --resume RUN_ID` child."""
        app = self.app
        cmd = resume_command(run_id, runs_dir=app.runs_dir, device=app.device)
        return self.start(f"resume {run_id}", cmd)

    def start_sweep(
        self,
        sweep: Sweep,
        overrides: dict[str, str],
        seeds: int | None,
        parallel: int | None = None,
    ) -> DetachedStart | None:
        """A `tui-trainer sweep NAME --set ...` child: the members not done yet, one by one, or
        `parallel` at once (`--parallel N`)."""
        app = self.app
        cmd = sweep_command(
            sweep.name,
            overrides,
            seeds=seeds,
            data_dir=app.data_dir,
            runs_dir=app.runs_dir,
            parallel=parallel,
        )
        label = f"sweep {sweep.name}" + (f" ({parallel} in parallel)" if parallel else "")
        return self.start(label, cmd)

    def start_search(
        self,
        name: str,
        overrides: dict[str, str],
        trials: int | None = None,
        parallel: int | None = None,
    ) -> DetachedStart | None:
        """A `tui-trainer tune NAME --set ... [--trials N]` child: one worker of the search's
        study until it has its trials, or `parallel` workers (`--parallel N`)."""
        app = self.app
        cmd = tune_command(
            name,
            overrides,
            data_dir=app.data_dir,
            runs_dir=app.runs_dir,
            trials=trials,
            parallel=parallel,
        )
        label = f"search {name}" + (f" ({parallel} in parallel)" if parallel else "")
        return self.start(label, cmd)

    def start(self, label: str, command: list[str]) -> DetachedStart | None:
        """Spawn the child and show it in the Watch view ("starting detached" until its run)."""
        try:
            start = detached.spawn(command, self.app.runs_dir, label)
        except OSError as exc:
            self.app.notify(f"{exc}", title=f"{label}: could not start detached", severity="error")
            return None
        with self._lock:
            self.children[start.pid] = start
            self._seen.pop(start.pid, None)  # a pid of an earlier child, reaped and reused
        self.runs.pop(start.pid, None)
        self.app.notify(f"{label}: starting detached (pid {start.pid}), output in {start.log_path}")
        self.app.action_show_view("watch")
        self.app.main.view("watch").follow_detached(start)
        return start

    def run_of(self, start: DetachedStart) -> Run | None:
        run_id = self.runs.get(start.pid)
        return Run(self.app.runs_dir / run_id) if run_id else None

    def poll(self) -> None:
        """In the runs watcher's thread (it reads the runs folder and the child's log): post
        DetachedFound for a child's new run folder, DetachedEnded for a child that ended."""
        with self._lock:
            children = list(self.children.items())
        for pid, start in children:
            run = start.find_run()
            if run is not None and self._seen.get(pid) != run.id:
                self._seen[pid] = run.id
                self.app.post_message(DetachedFound(start, run))
            code = start.exit_code()
            if code is None:
                continue
            with self._lock:
                if self.children.get(pid) is start:
                    del self.children[pid]
            made_a_run = pid in self._seen
            tail = "" if made_a_run else start.log_tail()
            self.app.post_message(DetachedEnded(start, code, made_a_run, tail))

    def found(self, message: DetachedFound) -> None:
        """On the UI thread: a child's new run folder; the Watch view follows it if it follows
        that child."""
        self.runs[message.start.pid] = message.run.id
        self.app.main.view("watch").detached_run_found(message.start, message.run)

    def ended(self, message: DetachedEnded) -> None:
        """On the UI thread: a child ended; one that made no run folder says why."""
        start = message.start
        if not message.made_a_run:
            why = f"ended (exit {message.code}) without a run folder: {message.tail}"
            status = ENDED_BEFORE_A_RUN.get(message.code, RunStatus.FAILED)
            self.app.main.view("watch").detached_ended(start, status, why)
            severity = "error" if status == RunStatus.FAILED else "information"
            self.app.notify(why, title=f"{start.label} (detached)", severity=severity)
