"""A sweep on the Launch view: its members, each done, failed, training, queued, remaining or
running elsewhere, kept live from the runs folder.

The members come from `sweep_file.load_sweep` with the overrides typed here (the CLI's `--set`,
applied to every member; `seeds=N` is the CLI's `--seeds N`); their standing from
`sweeps.member_states` (the runs folder and the members' claims), then the app's own queue on
top: a member waiting in the queue reads "queued", the one training "training". Start queues the
members `tui-trainer sweep` would run, so the CLI and the console resume a sweep the same way.

Members of other processes: a member claimed by a live process (another `tui-trainer sweep`, a
`--parallel` worker, a Slurm task, this console's detached child) reads `running · HOST`, with
the pid when that process is on this host; its claim shows it from before its run folder exists
(the first decode is long). A claim left by a process that died reads as what the next sweep
does with the member: `crashed` (this host) or `stale` (another host's heartbeat stopped), both
rerun, resumed from their last epoch when they have one. Enter on a running member follows its
run folder in the Watch view (views/launch.py).

Live: while the panel is on screen it rereads the runs folder every REFRESH_S seconds in a
thread worker (config.json, summary.json and the claims' owner.json: small files) and redraws
only when a row changed, so members move pending -> running -> completed as other processes
train them. Hidden (another view, or a preset picked instead of a sweep), it reads nothing.

Looks: each cell's state is a styled label (`STATE_LOOK`; a DataTable cell has no CSS class);
the panel itself carries `-elsewhere` while any member runs in another process, which shows the
line naming where (styles in launch.tcss).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from tui_trainer.config import parse_set_options
from tui_trainer.errors import ConfigError, UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.groups import comparable
from tui_trainer.runs.owner import Owner
from tui_trainer.runs.status import UNSETTLED
from tui_trainer.studies import sweep_file, sweeps
from tui_trainer.tui.jobs import JobState

REFRESH_S = 1.5  # seconds between rereads of the runs folder while the panel is shown
OVERRIDE_FIELD = "override field"  # what a bad override's error blames (the CLI's is --set)
# What a member's state reads as, and its style; the order the counts line uses.
STATE_LOOK = {
    RunStatus.COMPLETED: ("✓ done", "green"),
    JobState.TRAINING: ("▶ training", "bold cyan"),
    RunStatus.RUNNING: ("▶ running elsewhere", "cyan"),
    JobState.QUEUED: ("⋯ queued", "yellow"),
    sweeps.PENDING: ("· remaining", ""),
    RunStatus.INTERRUPTED: ("· interrupted, reruns", "yellow"),
    RunStatus.CRASHED: ("✗ crashed, reruns", "red"),
    RunStatus.STALE: ("? stale (silent elsewhere), reruns", "yellow"),
    RunStatus.FAILED: ("✗ failed, reruns", "red"),
    RunStatus.DIVERGED: ("✗ diverged (final)", "red"),
}
COUNTED = (
    ("done", (RunStatus.COMPLETED,)),
    ("running elsewhere", (RunStatus.RUNNING,)),
    ("failed", (RunStatus.FAILED, RunStatus.CRASHED, RunStatus.STALE, RunStatus.DIVERGED)),
)


class MemberRow(NamedTuple):
    """One member as the panel shows it: its state (a JobState while the app has it, else the
    runs folder's), the run that state comes from, the member's claim and its test accuracy."""

    member: sweep_file.SweepMember
    status: str
    run_id: str | None
    holder: Owner | None = None  # live, or left by a process that died
    test_acc: float | None = None  # completed members only

    @property
    def elsewhere(self) -> bool:
        """Trained right now by another process that claims it."""
        return self.status == RunStatus.RUNNING and self.holder is not None and self.holder.live

    def label(self) -> Text:
        text, style = STATE_LOOK.get(self.status, (self.status, ""))
        if self.elsewhere:
            text = f"▶ running · {where(self.holder)}"
        elif self.holder is not None and self.status in (RunStatus.CRASHED, RunStatus.STALE):
            text += f" · was {where(self.holder)}"
        return Text(text, style=style)


def where(holder: Owner) -> str:
    """`gpu-box-2`, or `this-host pid 123` for a process of this host (one that could be
    stopped from here)."""
    if holder.host == socket.gethostname() and holder.pid:
        return f"{holder.host} pid {holder.pid}"
    return holder.host


def parse_sweep_overrides(text: str, device: str | None = None) -> dict[str, str]:
    """ "classes=5 image_size=64" -> {"classes": "5", "image_size": "64"} (the app's --device
    too, unless the text sets one)."""
    overrides = parse_set_options(text.split())
    if device and "device" not in overrides:
        overrides["device"] = device
    return overrides


def parse_sweep_input(
    text: str, device: str | None = None
) -> tuple[dict[str, str], tuple[int, ...] | None]:
    """The typed overrides, and the seeds `seeds=N` asks for (None: the file's own)."""
    words, seeds = [], None
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ConfigError(f"{word!r} is not key=value: write e.g. epochs=2")
        if key != "seeds":
            words.append(word)
        elif value.isdecimal() and value.isascii():
            seeds = sweep_file.first_seeds(int(value))
        else:
            raise ConfigError(f"{word}: seeds=N takes a whole number, e.g. seeds=3 (42, 0, 1)")
    return parse_sweep_overrides(" ".join(words), device), seeds


def member_rows(
    sweep: sweep_file.Sweep, runs_dir: Path, queued: set[str | None], training: str | None
) -> list[MemberRow]:
    """Each member's row from the runs folder and its claim, with the app's own jobs (their
    comparable configs: `queued`, `training`) on top. Reads files only: safe in a thread."""
    rows = []
    for state in sweeps.member_states(sweep, runs_dir):
        key = comparable(state.member.config.to_dict())
        status = state.status
        holder = state.holder
        if holder is not None and not holder.live and status in UNSETTLED:
            status = holder.status  # crashed or stale: what the next sweep reruns
        if key == training:
            status = JobState.TRAINING
        elif key in queued and status != RunStatus.COMPLETED and not (holder and holder.live):
            status = JobState.QUEUED  # one another process claimed meanwhile shows as such
        run_id = state.run.id if state.run else (holder.run_id if holder else None)
        test_acc = None
        if state.run is not None and status == RunStatus.COMPLETED:
            test_acc = state.run.summary().get("test_acc")
        rows.append(MemberRow(state.member, status, run_id, holder, test_acc))
    return rows


class SweepPanel(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep_name: str | None = None
        self.sweep: sweep_file.Sweep | None = None
        self.error = ""
        self.states: list[MemberRow] = []

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="key=value ... for every member, e.g. classes=5 image_size=64 seeds=3",
            id="sweep-set",
            compact=True,
        )
        yield Static("", id="sweep-error")
        table = DataTable(id="sweep-members", cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "MEMBER", "STATE", "TEST_ACC", "RUN")  # RUN last: cut first
        yield table
        yield Static("", id="sweep-elsewhere")
        yield Static("", id="sweep-counts")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self.reread)

    def load(self, name: str) -> None:
        if name != self.sweep_name:
            self.sweep_name = name
            self.resolve()

    def resolve(self) -> None:
        """Expand the sweep with the typed overrides; a mistake shows under the field."""
        if self.sweep_name is None:
            return
        text = self.query_one("#sweep-set", Input).value
        try:
            try:
                overrides, seeds = parse_sweep_input(text, self.app.device)
            except UserError as exc:
                raise ConfigError(f"{OVERRIDE_FIELD}: {exc}") from None
            self.sweep = sweep_file.load_sweep(
                self.sweep_name, overrides, seeds=seeds, source=OVERRIDE_FIELD
            )
            self.error = ""
        except UserError as exc:
            self.sweep, self.error = None, str(exc)
        error = self.query_one("#sweep-error", Static)
        error.update(self.error)
        self.set_class(bool(self.error), "-invalid")
        self.refresh_states()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.resolve()

    def _app_jobs(self) -> tuple[set[str | None], str | None]:
        """The comparable configs of the app's queued jobs and of the one training."""
        queued = {comparable(job.config.to_dict()) for job in self.app.queue.jobs}
        current = self.app.current_job
        return queued, comparable(current.config.to_dict()) if current else None

    def refresh_states(self) -> None:
        """Each member's state from the runs folder and the app's queue; redraw (now)."""
        rows = []
        if self.sweep is not None:
            rows = member_rows(self.sweep, self.app.runs_dir, *self._app_jobs())
        self.states = rows
        self._draw()

    def reread(self) -> None:
        """Reread in a thread while the panel is on screen (the timer, a changed runs folder);
        skip while hidden."""
        if self.sweep is None or not self.is_on_screen:
            return
        sweep, runs_dir, jobs = self.sweep, self.app.runs_dir, self._app_jobs()

        def read() -> None:
            try:
                rows = member_rows(sweep, runs_dir, *jobs)
            except OSError:  # a folder deleted while listed, a mount gone: the next tick retries
                return
            self.app.call_from_thread(self._reread, sweep, rows)

        # a failed reread must not end the console: the worker keeps its error to itself
        self.run_worker(
            read, thread=True, exclusive=True, group="sweep-refresh", exit_on_error=False
        )

    def _reread(self, sweep: sweep_file.Sweep, rows: list[MemberRow]) -> None:
        """A reread landed: redraw when it is still this sweep and a row changed."""
        if sweep is self.sweep and rows != self.states:
            self.states = rows
            self._draw()

    def _draw(self) -> None:
        table = self.query_one("#sweep-members", DataTable)
        keep = table.cursor_row
        table.clear()
        for i, row in enumerate(self.states, 1):
            table.add_row(
                str(i),
                row.member.name,
                row.label(),
                "-" if row.test_acc is None else f"{row.test_acc:.3f}",
                row.run_id or "-",
            )
        if self.states:
            table.move_cursor(row=min(keep, len(self.states) - 1))
        self.query_one("#sweep-counts", Static).update(self.counts_line())
        elsewhere = [row for row in self.states if row.elsewhere]
        self.set_class(bool(elsewhere), "-elsewhere")
        self.query_one("#sweep-elsewhere", Static).update(self.elsewhere_line(elsewhere))

    @staticmethod
    def elsewhere_line(rows: list[MemberRow]) -> str:
        if not rows:
            return ""
        names = ", ".join(f"{row.member.name} on {where(row.holder)}" for row in rows[:3])
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        return f"in other processes: {names}{more} · enter on one follows its run"

    def counts_line(self) -> str:
        if self.sweep is None:
            return ""
        statuses = [row.status for row in self.states]
        parts = [f"{len(statuses)} members"]
        if self.sweep.seeds:
            parts[0] += f" over seeds {', '.join(map(str, self.sweep.seeds))}"
        for word, kinds in COUNTED:
            count = sum(s in kinds for s in statuses)
            if count or word != "running elsewhere":
                parts.append(f"{count} {word}")
        in_app = sum(s in tuple(JobState) for s in statuses)
        if in_app:
            parts.append(f"{in_app} training or queued")
        parts.append(f"{len(self.to_run())} to run")
        if self.sweep.dropped:
            parts.append(f"{len(self.sweep.dropped)} duplicate config(s) run once")
        return " · ".join(parts)

    def to_run(self) -> list[sweep_file.SweepMember]:
        """What Start queues: members `tui-trainer sweep` would run, not already in the app."""
        return sweeps.pending_members(self.states)

    def row_at_cursor(self) -> MemberRow | None:
        row = self.query_one("#sweep-members", DataTable).cursor_row
        return self.states[row] if 0 <= row < len(self.states) else None
