"""The footer line of key bindings, drawn as one line of text.

Textual's `Footer` rebuilds one widget per key whenever focus or the screen changes; on this
2-core machine that cost ~130 ms of CPU per switch, most of a key press's budget. This bar
shows the same bindings (the focused widget's first, then its containers', the screen's and
the app's) as one `Static` update, and a click on a key presses it, like the footer.

The app's views have two keys each: 1-5, and F1-F5, which a text field does not take as text.
The bar shows the ones that work now: F1-F5 while a text field has focus, else 1-5. When the
line is wider than the terminal, they shrink to one "1-5 Views" ("F1-F5 Views") item, so the
keys of the view at hand and Quit stay in sight; if it is still too wide, the keys left of Quit
go from the right until it fits (never `q Qu…`).
"""

from __future__ import annotations

from textual.content import Content
from textual.screen import Screen
from textual.widgets import Input, Static, TextArea

VIEW_ACTION = "show_view("  # the app's bindings that switch views
TEXT_FIELDS = (Input, TextArea)  # focused, they take 1-5 as text
FUNCTION_KEYS = {f"f{n}" for n in range(1, 13)}


def view_key_shown(key: str, screen: Screen) -> bool:
    """Whether the bar shows this view key: an F-key exactly while a text field has focus."""
    return (key in FUNCTION_KEYS) == isinstance(screen.focused, TEXT_FIELDS)


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

    def on_resize(self) -> None:
        self._bindings_changed(self.screen)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is not self.screen:
            return
        parts: list[Content] = []
        views: list[tuple[int, str]] = []  # (index in parts, key) of the app's view keys
        actions: set[str] = set()
        for key, (_node, binding, enabled, _tip) in screen.active_bindings.items():
            if not binding.show or binding.action in actions:
                continue
            if binding.action.startswith(VIEW_ACTION):
                if not view_key_shown(key, screen):
                    continue
                views.append((len(parts), key))
            actions.add(binding.action)
            label = key.upper() if key in FUNCTION_KEYS else ""  # "F1", as printed on the key
            parts.append(self._item(key, binding.description, enabled, binding, label))
        content = Content(" ").join(parts)
        if views and content.cell_length > self.size.width > 0:
            first, last = views[0][1], views[-1][1]
            label = f"{first}-{last}".upper()  # "1-5", "F1-F5"
            parts[views[0][0]] = self._item(first, "Views", True, label=label)
            dropped = {i for i, _ in views[1:]}
            parts = [p for i, p in enumerate(parts) if i not in dropped]
            content = Content(" ").join(parts)
        while len(parts) > 2 and content.cell_length > self.size.width > 0:
            # still too wide: the keys before Quit go from the right, Quit stays whole
            del parts[-2]
            content = Content(" ").join(parts)
        if content != self._shown:
            self._shown = content
            self.update(content)

    def _item(self, key: str, description: str, enabled: bool, binding=None, label: str = ""):
        style = "$footer-key-foreground" if enabled else "$text-disabled"
        click = f"app.simulate_key({key!r})"  # key names are plain: "s", "ctrl+s", "slash"
        return Content.from_markup(
            f"[@click={click}][b {style}] $label [/][/]$description",
            label=label or self.app.get_key_display(binding),
            description=description,
        )
