"""A sweep on the Launch view: its members, each done, failed, training, queued or remaining.

The members come from `studies.load_sweep` with the overrides typed here (the CLI's `--set`,
applied to every member; `seeds=N` is the CLI's `--seeds N`); their standing from
`studies.member_states` (the runs folder), then the app's own queue on top: a member waiting in
the queue reads "queued", the one training "training". Start queues the members `tui-trainer
sweep` would run, so the CLI and the console resume a sweep the same way.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from tui_trainer.config import parse_set_options
from tui_trainer.errors import ConfigError, UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.store import Run
from tui_trainer.studies import sweeps as studies
from tui_trainer.tui.jobs import JobState

# What a member's state reads as, and its style; the order the counts line uses.
STATE_LOOK = {
    RunStatus.COMPLETED: ("✓ done", "green"),
    JobState.TRAINING: ("▶ training", "bold cyan"),
    RunStatus.RUNNING: ("▶ running elsewhere", "cyan"),
    JobState.QUEUED: ("⋯ queued", "yellow"),
    studies.PENDING: ("· remaining", ""),
    RunStatus.INTERRUPTED: ("· interrupted, reruns", "yellow"),
    RunStatus.CRASHED: ("✗ crashed, reruns", "red"),
    RunStatus.STALE: ("? stale (silent elsewhere), reruns", "yellow"),
    RunStatus.FAILED: ("✗ failed, reruns", "red"),
    RunStatus.DIVERGED: ("✗ diverged (final)", "red"),
}
COUNTED = (
    ("done", (RunStatus.COMPLETED,)),
    ("failed", (RunStatus.FAILED, RunStatus.CRASHED, RunStatus.STALE, RunStatus.DIVERGED)),
)


class MemberRow(NamedTuple):
    """One member as the panel shows it: its state (a JobState while the app has it, else the
    runs folder's) and the run that state comes from."""

    member: studies.SweepMember
    status: str
    run_id: str | None


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
        key, _, value = word.partition("=")
        if key != "seeds":
            words.append(word)
        elif value.isdecimal() and value.isascii():
            seeds = studies.first_seeds(int(value))
        else:
            raise ConfigError(f"{word}: seeds=N takes a whole number, e.g. seeds=3 (42, 0, 1)")
    return parse_sweep_overrides(" ".join(words), device), seeds


class SweepPanel(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep_name: str | None = None
        self.sweep: studies.Sweep | None = None
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
        yield Static("", id="sweep-counts")

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
            overrides, seeds = parse_sweep_input(text, self.app.device)
            self.sweep = studies.load_sweep(self.sweep_name, overrides, seeds=seeds)
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

    def refresh_states(self) -> None:
        """Each member's state from the runs folder and the app's queue; redraw."""
        self.states = []
        if self.sweep is not None:
            queued = {studies.comparable(job.config.to_dict()) for job in self.app.queue.jobs}
            current = self.app.current_job
            training = studies.comparable(current.config.to_dict()) if current else None
            for state in studies.member_states(self.sweep, self.app.runs_dir):
                key = studies.comparable(state.member.config.to_dict())
                status = state.status
                if key == training:
                    status = JobState.TRAINING
                elif key in queued and status != RunStatus.COMPLETED:
                    status = JobState.QUEUED
                self.states.append(
                    MemberRow(state.member, status, state.run.id if state.run else None)
                )
        self._draw()

    def _draw(self) -> None:
        table = self.query_one("#sweep-members", DataTable)
        keep = table.cursor_row
        table.clear()
        for i, (member, status, run_id) in enumerate(self.states, 1):
            label, style = STATE_LOOK.get(status, (status, ""))
            test_acc = None
            if run_id is not None and status == RunStatus.COMPLETED:
                test_acc = Run(self.app.runs_dir / run_id).summary().get("test_acc")
            table.add_row(
                str(i),
                member.name,
                Text(label, style=style),
                "-" if test_acc is None else f"{test_acc:.3f}",
                run_id or "-",
            )
        if self.states:
            table.move_cursor(row=min(keep, len(self.states) - 1))
        self.query_one("#sweep-counts", Static).update(self.counts_line())

    def counts_line(self) -> str:
        if self.sweep is None:
            return ""
        statuses = [status for _, status, _ in self.states]
        parts = [f"{len(statuses)} members"]
        if self.sweep.seeds:
            parts[0] += f" over seeds {', '.join(map(str, self.sweep.seeds))}"
        for word, kinds in COUNTED:
            parts.append(f"{sum(s in kinds for s in statuses)} {word}")
        in_app = sum(s in tuple(JobState) for s in statuses)
        if in_app:
            parts.append(f"{in_app} training or queued")
        parts.append(f"{len(self.to_run())} to run")
        if self.sweep.dropped:
            parts.append(f"{len(self.sweep.dropped)} duplicate config(s) run once")
        return " · ".join(parts)

    def to_run(self) -> list[studies.SweepMember]:
        """What Start queues: members `tui-trainer sweep` would run, not already in the app."""
        return studies.pending_members(self.states)

    def run_at_cursor(self) -> str | None:
        row = self.query_one("#sweep-members", DataTable).cursor_row
        return self.states[row].run_id if 0 <= row < len(self.states) else None
