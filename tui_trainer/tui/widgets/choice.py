"""A one-line choice among a few values: left/right (or a click) steps through them.

Stands in for `Select` in the form: a Select is half a dozen widgets with an overlay list, and
restyling five of them each time the launch screen comes back cost more than the rest of the
screen together; this is one widget, and as quick to drive from the keyboard.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class Choice(Widget, can_focus=True):
    DEFAULT_CSS = """
    Choice {
        height: 1;
        width: 1fr;
        background: $boost;
        padding: 0 1;
        &:focus {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: bold;
        }
    }
    """
    BINDINGS = [
        Binding("right", "step(1)", "Change", key_display="←→"),
        Binding("space", "step(1)", "Next value", show=False),
        Binding("left", "step(-1)", "Previous value", show=False),
    ]

    value: reactive[str] = reactive("", layout=False)

    class Changed(Message):
        def __init__(self, choice: Choice, value: str) -> None:
            super().__init__()
            self.choice = choice
            self.value = value

        @property
        def control(self) -> Choice:
            return self.choice

    def __init__(self, options: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = list(options)
        self.set_reactive(Choice.value, self.options[0])

    def set_options(self, options: tuple[str, ...] | list[str]) -> None:
        self.options = list(options)

    def render(self) -> Content:
        return Content.from_markup("‹ $value ›", value=self.value)

    def watch_value(self, value: str) -> None:
        self.post_message(self.Changed(self, value))

    def action_step(self, delta: int) -> None:
        index = self.options.index(self.value) if self.value in self.options else 0
        self.value = self.options[(index + delta) % len(self.options)]

    def on_click(self) -> None:
        self.focus()
        self.action_step(1)
