"""The footer line of key bindings, drawn as one line of text.

Textual's `Footer` rebuilds one widget per key whenever focus or the screen changes; on this
2-core machine that cost ~130 ms of CPU per switch, most of a key press's budget. This bar
shows the same bindings (the focused widget's first, then its containers', the screen's and
the app's) as one `Static` update, and a click on a key presses it, like the footer.
"""

from __future__ import annotations

from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._shown: Content | None = None
        self._bindings_changed(self.screen)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is not self.screen:
            return
        parts: list[Content] = []
        actions: set[str] = set()
        for key, (_node, binding, enabled, _tip) in screen.active_bindings.items():
            if not binding.show or binding.action in actions:
                continue
            actions.add(binding.action)
            style = "$footer-key-foreground" if enabled else "$text-disabled"
            click = f"app.simulate_key({key!r})"  # key names are plain: "s", "ctrl+s", "slash"
            parts.append(
                Content.from_markup(
                    f"[@click={click}][b {style}] $label [/][/]$description",
                    label=self.app.get_key_display(binding),
                    description=binding.description,
                )
            )
        content = Content(" ").join(parts)
        if content != self._shown:
            self._shown = content
            self.update(content)
