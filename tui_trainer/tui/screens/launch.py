"""Launch: pick a preset, adjust its hyperparameters, start it (or queue it behind the run
that is training), and edit the queue."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, OptionList, Static

from ..widgets.config_form import FORM_ERROR, ConfigForm
from ..widgets.preset_picker import PresetPicker
from ..widgets.queue_list import QueueList

DEFAULT_PRESET = "scratch"


class LaunchView(Horizontal):
    TITLE = "Launch"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("escape", "focus_presets", "Presets", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="presets-pane"):
            yield Label("Presets", classes="pane-title")
            yield PresetPicker(self.app.presets, id="presets")
        with Vertical(id="form-pane"):
            yield Static("", id="preset-info")
            yield Static("", id="data-status")
            yield ConfigForm(id="form")
            with Horizontal(id="start-row"):
                yield Button("Start ▶", id="start", variant="success", compact=True)
                yield Static("", id="start-hint")
            yield Label("Queue", id="queue-title", classes="pane-title")
            yield QueueList(id="queue")

    @property
    def default_focus(self):
        return self.query_one(PresetPicker)

    def on_mount(self) -> None:
        self._show_data_status(None)
        self.app.data_changed.subscribe(self, self._show_data_status)
        picker = self.query_one(PresetPicker)
        if DEFAULT_PRESET in picker.presets:
            picker.select_preset(DEFAULT_PRESET)
        picker.focus()
        self.app.queue_changed.subscribe(self, self._show_queue)
        self._show_queue(None)

    def _show_data_status(self, _: object) -> None:
        status = self.query_one("#data-status", Static)
        problem = self.app.data_problem
        checking = "" if self.app.data_checked else " (checking...)"
        status.update(problem or f"data: {self.app.data_dir}{checking}")
        status.set_class(bool(problem), "-invalid")

    def _show_queue(self, _: object) -> None:
        jobs = list(self.app.queue.jobs)
        self.query_one(QueueList).show(jobs)
        title = f"Queue ({len(jobs)} waiting)" if jobs else "Queue: empty"
        self.query_one("#queue-title", Label).update(title)
        hint = self.query_one("#start-hint", Static)
        current = self.app.current_job
        hint.update(
            f"training {current.label}: Start adds to the queue" if current else "ctrl+s starts"
        )
        self.query_one("#start", Button).label = "Queue +" if current else "Start ▶"

    @on(OptionList.OptionHighlighted, "#presets")
    def _preset_chosen(self, event: OptionList.OptionHighlighted) -> None:
        preset = self.query_one(PresetPicker).current
        if preset is None:
            return
        c = preset.config
        self.query_one("#preset-info", Static).update(
            f"[b]{preset.name}[/b] ({preset.study}): {preset.description}\n"
            f"[dim]{c.model} weights={c.weights} freeze={c.freeze} augment={c.augment} "
            f"lr={c.lr:g} epochs={c.epochs} step={c.step_size} gamma={c.gamma:g}[/dim]"
        )
        self.query_one(ConfigForm).load(preset, self.app.device)

    @on(OptionList.OptionSelected, "#presets")
    def _preset_picked(self) -> None:
        self.query_one("#lr").focus()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_focus_presets(self) -> None:
        self.query_one(PresetPicker).focus()

    def action_start(self) -> None:
        form = self.query_one(ConfigForm)
        if self.app.data_problem:
            self.notify(self.app.data_problem, title="No dataset", severity="error")
            return
        result = form.check()
        if result.config is None or form.preset is None:
            first = form.first_invalid()
            if first is not None:
                first.focus()
            message = next(iter(result.errors.values()), "")
            where = next(iter(result.errors), FORM_ERROR)
            self.notify(message, title=f"Start refused: fix {where}", severity="error")
            return
        self.app.submit(form.preset.name, result.overrides, result.config)
