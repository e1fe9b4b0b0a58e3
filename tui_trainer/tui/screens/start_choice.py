"""Where Start trains: a small dialog over the Launch view, one option per way to start.

The options are rows of a list (`START_OPTIONS`), each a mode, a title and a line saying what it
means. Keyboard first: the last choice of this session is highlighted and focused, enter starts,
escape cancels; the dialog answers a `StartChoice` (the mode, and for "N in parallel" the N), or
None.

A sweep gets a third row, "N in parallel" (`ParallelOffer`): a detached `tui-trainer sweep
--parallel N` that trains N members at once (a search: `tui-trainer tune --parallel N`, N trials
at once). N starts at the number of CUDA GPUs this console sees when there are more than one,
else at 2 (`default_parallel`), never above the members left to run; + and - change it (and
highlight the row, so enter starts it). Its line says where the N members train: one GPU each,
sharing the one GPU, or on the CPU, whose cores they split. A single run's dialog has no such
row: a remembered "in parallel" highlights "Detached" there.

Above the rows the dialog says what is about to train: the config's differences from its preset
(`changes`), and how long it should take (`estimate`: a function run in a worker thread, as it
lists the data and reads the precision probe's cache; "estimating..." until it answers), so a
multi-hour start is never a surprise. Resume uses the same dialog (`verb`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui_trainer.config import RunConfig
from tui_trainer.tui.jobs import StartChoice, StartMode

MIN_PARALLEL = 2  # one member at a time is the "Detached" row


def describe_start(overrides: dict[str, str], config: RunConfig) -> str:
    """What Start is about to train: its edits from the preset, and the run's scale."""
    edits = " ".join(f"{k}={v}" for k, v in overrides.items())
    head = f"changed from the preset: {edits}" if edits else "the preset as it is, no edits"
    classes = f"{config.classes} classes" if config.classes else "all classes"
    return (
        f"{head}\n{classes}, {config.image_size} px, {config.epochs} epochs, "
        f"batch {config.batch_size}, {config.model} on {config.device}"
    )


@dataclass(frozen=True)
class StartOption:
    mode: StartMode
    title: str
    about: str  # one line: what happens, and when to choose it


START_OPTIONS = (
    StartOption(
        StartMode.IN_CONSOLE,
        "In this console",
        "Trains here, queued behind a run in training; ends (interrupted, resumable) with "
        "the console or its terminal.",
    ),
    StartOption(
        StartMode.DETACHED,
        "Detached",
        "A `tui-trainer` process of its own: survives the console and a dropped SSH "
        "connection; watched and stopped from any console.",
    ),
    StartOption(
        StartMode.PARALLEL,
        "{n} in parallel",
        "A detached `tui-trainer {command} --parallel {n}`: {n} {unit} at once, {where} "
        "(+/- for more or fewer).",
    ),
)


@dataclass(frozen=True)
class ParallelOffer:
    """The dialog's "N in parallel" row for a sweep: N to show first, and what bounds it."""

    count: int  # N, shown first
    most: int  # members left to run: more at once would leave processes idle
    gpus: int  # CUDA GPUs this console sees (0: it trains on the CPU)
    command: str = "sweep"  # the detached command: sweep, or tune for a search
    unit: str = "members"  # what trains N at once: a sweep's members, a search's trials

    @property
    def where(self) -> str:
        if self.gpus > 1:
            return f"one GPU each ({self.gpus} GPUs here)"
        if self.gpus == 1:
            return "sharing the one GPU"
        return f"on the CPU, its {os.cpu_count() or 1} cores split between them"


def default_parallel(gpus: int, most: int) -> int:
    """N for a sweep's parallel start: one member per GPU when there are several, else 2;
    at most the members left to run (and never under 2)."""
    wanted = gpus if gpus > 1 else MIN_PARALLEL
    return max(MIN_PARALLEL, min(wanted, most))


def offered(parallel: ParallelOffer | None) -> tuple[StartOption, ...]:
    """The rows of the dialog: the parallel one only for a sweep with members to share out."""
    return tuple(o for o in START_OPTIONS if o.mode != StartMode.PARALLEL or parallel)


class StartChoiceScreen(ModalScreen[StartChoice | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("plus,equals_sign", "more", "One more at once", show=False),
        Binding("minus", "fewer", "One fewer at once", show=False),
    ]

    class Estimated(Message):
        """The estimate's worker answered: one line."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(  # noqa: PLR0913 - each names one part of what the dialog shows
        self,
        what: str,
        default: StartMode,
        queued_behind: str = "",
        parallel: ParallelOffer | None = None,
        changes: str = "",
        estimate: Callable[[], str] | None = None,
        verb: str = "Start",
    ) -> None:
        super().__init__()
        self.what, self.queued_behind, self.parallel = what, queued_behind, parallel
        self.changes, self.estimate, self.verb = changes, estimate, verb
        self.options = offered(parallel)
        modes = [o.mode for o in self.options]
        self.default = default if default in modes else StartMode.DETACHED
        self.count = parallel.count if parallel else None

    def compose(self) -> ComposeResult:
        with Vertical(id="start-choice-box"):
            yield Static(f"{self.verb} [b]{escape(self.what)}[/b]", id="start-choice-title")
            yield Static(escape(self.changes), id="start-choice-changes")
            yield Static("estimating how long it takes...", id="start-choice-estimate")
            yield OptionList(
                *(Option(self._prompt(o), id=o.mode) for o in self.options),
                id="start-choice",
            )
            keys = "enter starts · escape cancels"
            if self.parallel:
                unit = self.parallel.unit
                keys = f"enter starts · +/- {unit} at once · escape cancels"
            yield Static(keys, id="start-choice-keys")

    def _prompt(self, option: StartOption) -> str:
        title, about = option.title, option.about
        if option.mode == StartMode.IN_CONSOLE and self.queued_behind:
            title += f" (queued behind {self.queued_behind})"
        if option.mode == StartMode.PARALLEL and self.parallel:
            title = title.format(n=self.count)
            offer = self.parallel
            about = about.format(
                n=self.count, where=offer.where, command=offer.command, unit=offer.unit
            )
        return f"[b]{title}[/b]\n[dim]{about}[/dim]"

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = options.get_option_index(self.default)
        options.focus()
        self.query_one("#start-choice-changes").display = bool(self.changes)
        self.query_one("#start-choice-estimate").display = self.estimate is not None
        if self.estimate is not None:
            self._estimate(self.estimate)

    @work(thread=True, group="estimate", exit_on_error=False)
    def _estimate(self, estimate: Callable[[], str]) -> None:
        try:
            text = estimate()
        except Exception as exc:  # noqa: BLE001 - the dialog works without an estimate
            text = f"no estimate: {type(exc).__name__}: {exc}"
        self.post_message(self.Estimated(text))

    def on_start_choice_screen_estimated(self, message: Estimated) -> None:
        self.query_one("#start-choice-estimate", Static).update(escape(message.text))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        mode = StartMode(event.option.id)
        self.dismiss(StartChoice(mode, self.count if mode == StartMode.PARALLEL else None))

    def action_more(self) -> None:
        self._change_count(+1)

    def action_fewer(self) -> None:
        self._change_count(-1)

    def _change_count(self, delta: int) -> None:
        """N one up or down, within MIN_PARALLEL..members left; the row is highlighted."""
        if self.parallel is None or self.count is None:
            return
        most = max(MIN_PARALLEL, self.parallel.most)
        self.count = min(most, max(MIN_PARALLEL, self.count + delta))
        options = self.query_one(OptionList)
        row = next(o for o in self.options if o.mode == StartMode.PARALLEL)
        options.replace_option_prompt(StartMode.PARALLEL, self._prompt(row))
        options.highlighted = options.get_option_index(StartMode.PARALLEL)

    def action_cancel(self) -> None:
        self.dismiss(None)
