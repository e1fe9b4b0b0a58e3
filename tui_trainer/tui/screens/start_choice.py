"""Where Start trains: a small dialog over the Launch view, one option per way to start.

The options are rows of a list (`START_OPTIONS`), each a mode, a title and a line saying what it
means, so another way to start (a sweep's "N in parallel") is one more row. Keyboard first: the
last choice of this session is highlighted and focused, enter starts, escape cancels; the
dialog answers the chosen `StartMode`, or None.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui_trainer.tui.jobs import StartMode


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
)


class StartChoiceScreen(ModalScreen[StartMode | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, default: StartMode, queued_behind: str = "") -> None:
        super().__init__()
        self.what, self.default, self.queued_behind = what, default, queued_behind

    def compose(self) -> ComposeResult:
        with Vertical(id="start-choice-box"):
            yield Static(f"Start [b]{self.what}[/b]", id="start-choice-title")
            yield OptionList(
                *(Option(self._prompt(o), id=o.mode) for o in START_OPTIONS),
                id="start-choice",
            )
            yield Static("enter starts · escape cancels", id="start-choice-keys")

    def _prompt(self, option: StartOption) -> str:
        title = option.title
        if option.mode == StartMode.IN_CONSOLE and self.queued_behind:
            title += f" (queued behind {self.queued_behind})"
        return f"[b]{title}[/b]\n[dim]{option.about}[/dim]"

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = options.get_option_index(self.default)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(StartMode(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
