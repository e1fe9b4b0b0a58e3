"""The main screen: the Launch, Watch, Runs, Studies and Preview views in one switcher.

Views, not screens, because switching screens makes Textual restyle every widget of the new
one (on this 2-core machine ~60 ms of CPU for the launch form, more while a run trains);
switching views only shows one and hides another. Detail, compare and confirm screens are
pushed over this one, and popping them back costs no restyle.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Header, Input

from tui_trainer.tui.views.launch import LaunchView
from tui_trainer.tui.views.preview import PreviewView
from tui_trainer.tui.views.results import ResultsView
from tui_trainer.tui.views.studies import StudiesView
from tui_trainer.tui.views.watch import WatchView
from tui_trainer.tui.widgets.key_bar import KeyBar


class MainScreen(Screen):
    # Short terminals get the watch view's three plots side by side (tall plots read better
    # than wide ones); from 32 rows the step-loss plot spans the top, the epoch plots below.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]

    def compose(self) -> ComposeResult:
        yield Header()
        with ContentSwitcher(initial="launch", id="views"):
            yield LaunchView(id="launch")
            yield WatchView(id="watch")
            yield ResultsView(id="runs")
            yield StudiesView(id="studies")
            yield PreviewView(id="preview")
        yield KeyBar()

    def on_mount(self) -> None:
        self._last_focus: dict[str, Widget] = {}
        self.show_view("launch")

    @property
    def current(self) -> str:
        return self.query_one(ContentSwitcher).current or "launch"

    def view(self, name: str) -> Widget:
        return self.query_one(f"#{name}")

    def show_view(self, name: str) -> None:
        """Bring a view to the front, giving focus back to where it was in that view."""
        switcher = self.query_one(ContentSwitcher)
        leaving = switcher.current
        focused = self.focused
        if leaving and focused is not None and self.view(leaving) in focused.ancestors_with_self:
            self._last_focus[leaving] = focused
        view = self.view(name)
        # Never back into a text field: the next key (say "2" for Watch) would be typed into it.
        target = self._last_focus.get(name)
        if target is None or isinstance(target, Input) or not target.is_attached:
            target = view.default_focus
        with self.app.batch_update():  # one repaint for the switch, title and focus together
            switcher.current = name
            self.sub_title = view.TITLE
            target.focus()
        if hasattr(view, "shown"):
            view.shown()
