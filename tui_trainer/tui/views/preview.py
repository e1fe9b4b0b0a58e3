"""Preview: the report's Figure 5 in the terminal, an image beside its CS-HF, H-RP and B-GS-R
augmentations, drawn with half-block characters (works over plain SSH).

Decoding and augmenting run in a thread worker (one at a time: a new request cancels the last
one's result), so the view stays responsive while a run trains; the engine side is
`tui_trainer.data.preview`, imported there (it brings torch), never at app start. Nothing loads
until the view is first shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Input, Static
from textual.worker import get_current_worker

from tui_trainer.errors import UserError
from tui_trainer.tui.widgets.halfblock import HalfBlockImage
from tui_trainer.tui.widgets.key_bar import KeyBar

PANEL_COUNT = 4  # original, CS-HF, H-RP, B-GS-R (preview.PANELS)
FIXED_ROWS = 2  # the path field and the status line above the panels


@dataclass(frozen=True)
class Request:
    """What to show: `path` typed or given (None: a random dataset image); with `image`
    (the decoded picture of `path`) only new augmentations are drawn."""

    number: int
    path: str | None
    seed: int | None
    image: Any = None
    shown_as: str = ""
    class_name: str | None = None


def panel_side(width: int, height: int, columns: int, rows: int) -> int:
    """Side in pixels of a square picture in one panel of a columns x rows grid (1-cell gutter
    between columns, a caption row per panel, two pixels per cell row)."""
    cell_w = (width - (columns - 1)) // columns
    cell_h = height // rows
    return max(0, min(cell_w, 2 * (cell_h - 1)))


class PreviewView(Vertical):
    TITLE = "Preview"
    BINDINGS = [
        Binding("n", "random_image", "Random image"),
        Binding("r", "redraw", "Redraw"),
        Binding("o,slash", "focus_path", "Open path"),
        Binding("escape", "focus_panels", "Panels", show=False),
    ]

    class Loaded(Message):
        """A request's result, from the worker: the panels, or a one-line error."""

        def __init__(
            self,
            request: Request,
            panels: list[tuple[str, Any]],
            image: Any = None,
            shown_as: str = "",
            class_name: str | None = None,
            error: str = "",
        ) -> None:
            super().__init__()
            self.request, self.panels, self.image = request, panels, image
            self.shown_as, self.class_name, self.error = shown_as, class_name, error

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seeds: Iterator[int] | None = None  # set (tests): draws repeat; else fresh each time
        self._numbers = 0
        self._started = False
        self._current: PreviewView.Loaded | None = None  # what the panels show

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="o: image path (absolute, or relative to the data folder), enter to load",
            id="preview-path",
            compact=True,
        )
        yield Static("", id="preview-status", markup=False)
        with Grid(id="preview-panels"):
            for i in range(PANEL_COUNT):
                yield HalfBlockImage(id=f"panel-{i}")

    def on_mount(self) -> None:
        self.panels[0].can_focus = True  # a leaf to hold focus, so n/r/1-5 reach their bindings

    @property
    def panels(self) -> list[HalfBlockImage]:
        return list(self.query(HalfBlockImage))

    @property
    def default_focus(self) -> HalfBlockImage:
        return self.panels[0]

    def shown(self) -> None:
        if not self._started:
            self.action_random_image()

    # --- layout: 2x2 like the figure, or one row where that draws bigger pictures --------------

    def on_resize(self) -> None:
        width, height = self.size.width, self.size.height - FIXED_ROWS
        one_row = panel_side(width, height, 4, 1) > panel_side(width, height, 2, 2)
        self.query_one("#preview-panels").set_class(one_row, "-row")

    # --- requests ------------------------------------------------------------------------------

    def open(self, path: str | Path) -> None:
        """Load an image by path (absolute, or relative to the data folder or its class folders)."""
        self.query_one("#preview-path", Input).value = str(path)
        self._request(str(path))

    def action_random_image(self) -> None:
        self._request(None)

    def action_redraw(self) -> None:
        current = self._current
        if current is None or current.image is None:
            self.action_random_image()
            return
        self._request(current.request.path, current.image, current.shown_as, current.class_name)

    def _request(
        self,
        path: str | None,
        image: Any = None,
        shown_as: str = "",
        class_name: str | None = None,
    ) -> None:
        self._started = True
        self._numbers += 1
        seed = next(self.seeds) if self.seeds is not None else None
        request = Request(self._numbers, path, seed, image, shown_as, class_name)
        what = "new augmentations" if image is not None else (path or "a random image")
        self._set_status(f"loading {what}...")
        self._work(request)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _work(self, request: Request) -> None:
        """In a thread: decode (unless redrawing), augment, convert to PIL; post the result."""
        from tui_trainer.data import preview as P  # torch and torchvision: loaded on first use

        data_dir = self.app.data_dir
        try:
            image, shown_as, class_name = request.image, request.shown_as, request.class_name
            if image is None and request.path is None:
                path, class_name, image = P.load_random_image(data_dir)
                shown_as = display_name(path, class_name)
            elif image is None:
                path = P.resolve_image_path(request.path, data_dir)
                image = P.load_image(path)
                class_name = P.class_of(path, data_dir)
                shown_as = display_name(path, class_name)
            # torch's thread count is left alone: setting it here could reach a training
            # thread (threads take the process-wide count at their first parallel op)
            drawn = P.augment_panels(image, request.seed)
            panels = [(label, P.to_pil(t)) for label, t in drawn]
            result = self.Loaded(request, panels, image, shown_as, class_name)
        except UserError as exc:
            result = self.Loaded(request, [], error=str(exc))
        except Exception as exc:  # noqa: BLE001 - shown in the view; the app goes on
            result = self.Loaded(request, [], error=f"{type(exc).__name__}: {exc}")
        if not get_current_worker().is_cancelled:
            self.post_message(result)

    def on_preview_view_loaded(self, message: Loaded) -> None:
        if message.request.number != self._numbers:
            return  # a newer request is on its way
        if message.error:
            what = "no random image" if message.request.path is None else "not loaded"
            self._set_status(f"{what}: {message.error}", error=True)
            return
        self._current = message
        with self.app.batch_update():
            for panel, (label, picture) in zip(self.panels, message.panels, strict=True):
                panel.update(picture, label)
            self._set_status(status_text(message))
            field = self.query_one("#preview-path", Input)
            if not field.has_focus:  # the field names what is shown, ready to edit
                field.value = message.shown_as

    def _set_status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#preview-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    # --- focus -------------------------------------------------------------------------------

    def action_focus_path(self) -> None:
        self.query_one("#preview-path", Input).focus()

    def action_focus_panels(self) -> None:
        self.panels[0].focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # escape leaves the path field; from the panels it goes on to the screen (back)
        if action == "focus_panels":
            return isinstance(self.screen.focused, Input)
        return True

    @on(Input.Submitted, "#preview-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._request(event.value.strip())
            self.action_focus_panels()


def display_name(path: Path, class_name: str | None) -> str:
    """class/file for a dataset image (as split files name it), else the whole path."""
    return f"{class_name}/{path.name}" if class_name else str(path)


def status_text(loaded: PreviewView.Loaded) -> str:
    where = f"class {loaded.class_name}" if loaded.class_name else "not in the dataset"
    return f"{loaded.shown_as} · {where}"


class PreviewScreen(Screen):
    """The preview of one image over another screen (a run's misclassified images): escape
    comes back to it, where the Preview view (5) would leave it."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield Header()
        yield PreviewView(id="preview-over")
        yield KeyBar()

    def on_mount(self) -> None:
        view = self.query_one(PreviewView)
        self.sub_title = f"Preview {self.path}"
        view.open(self.path)
        view.default_focus.focus()
