"""Launch: pick a preset, adjust its hyperparameters, start it (or queue it behind the run that is
training), and edit the queue. Picking a sweep shows its members instead of the form; Start then
queues the members still to run. Each preset keeps its form's edits until ctrl+r resets them
(marked * in the list), so moving through the list never discards them. Start asks where to
train (screens/start_choice.py), showing the edits and an estimate of the time: in this console,
or detached (a `tui-trainer run`/`sweep` child that outlives the console), and for a sweep also
"N in parallel" (a detached `tui-trainer sweep --parallel N`). Enter on a sweep member opens its
run, or follows it in the Watch view while it trains elsewhere. Picking a search shows its
space, budget and trials (widgets/search_panel.py); Start trains its trials here (one job per
trial), or runs `tui-trainer tune` detached, one worker or N in parallel, and enter on a trial
opens (or follows) its run. ctrl+l runs the LR range test of the form's config
(screens/lr_find.py) and can put its suggestion into the LR field."""

from __future__ import annotations

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, ContentSwitcher, DataTable, Label, OptionList, Static

from tui_trainer.config import RunConfig
from tui_trainer.events import RunStatus
from tui_trainer.runs.detached import cuda_gpus
from tui_trainer.runs.store import Run
from tui_trainer.train.estimate import estimate
from tui_trainer.train.lr_curve import format_lr
from tui_trainer.tui.jobs import StartChoice, StartMode, trial_jobs
from tui_trainer.tui.screens.lr_find import LrFindScreen
from tui_trainer.tui.screens.run_detail import RunDetailScreen
from tui_trainer.tui.screens.start_choice import (
    ParallelOffer,
    StartChoiceScreen,
    default_parallel,
    describe_start,
)
from tui_trainer.tui.widgets.config_form import FORM_ERROR, ConfigForm
from tui_trainer.tui.widgets.preset_picker import PresetPicker
from tui_trainer.tui.widgets.queue_list import QueueList
from tui_trainer.tui.widgets.search_panel import SearchPanel
from tui_trainer.tui.widgets.sweep_panel import SweepPanel, parse_sweep_input

DEFAULT_PRESET = "scratch"


class LaunchView(Horizontal):
    TITLE = "Launch"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("ctrl+l", "lr_find", "LR find", priority=True),
        Binding("ctrl+r", "reset_form", "Reset form", priority=True),
        Binding("escape", "focus_presets", "Presets", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="presets-pane"):
            yield Label("Presets", classes="pane-title")
            yield PresetPicker(self.app.presets, self.app.sweeps, self.app.searches, id="presets")
        with Vertical(id="form-pane"):
            yield Static("", id="preset-info")
            yield Static("", id="data-status")
            with ContentSwitcher(initial="form", id="launch-what"):
                yield ConfigForm(id="form")
                yield SweepPanel(id="sweep-panel")
                yield SearchPanel(id="search-panel")
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
        self.app.runs_scanned.subscribe(self, self._refresh_sweep)
        self._show_queue(None)

    @property
    def sweep_panel(self) -> SweepPanel:
        return self.query_one(SweepPanel)

    def pick(self, option_id: str) -> None:
        """Highlight a preset (its name) or a sweep ("sweep:NAME") and focus the picker."""
        picker = self.query_one(PresetPicker)
        picker.select_preset(option_id)
        picker.focus()

    @property
    def search_panel(self) -> SearchPanel:
        return self.query_one(SearchPanel)

    def _refresh_sweep(self, _: object) -> None:
        shown = self.query_one("#launch-what", ContentSwitcher).current
        if shown == "sweep-panel":
            self.sweep_panel.reread()
        elif shown == "search-panel":
            self.search_panel.reread()  # in a thread

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
        current = self.app.current_job
        self._show_start_hint()
        self.query_one("#start", Button).label = "Queue +" if current else "Start ▶"
        if self.query_one("#launch-what", ContentSwitcher).current == "sweep-panel":
            self.sweep_panel.refresh_states()  # queued and training: shown as they change

    def _show_start_hint(self) -> None:
        current = self.app.current_job
        hint = f"training {current.label}: Start adds to the queue" if current else "ctrl+s starts"
        form = self.query_one(ConfigForm)
        if form.changes and self.query_one(PresetPicker).current is not None:
            hint = f"edited, ctrl+r resets: {form.changes}"  # the keys first: a long list is cut
        self.query_one("#start-hint", Static).update(escape(hint))

    @on(ConfigForm.Edited)
    def _form_edited(self, event: ConfigForm.Edited) -> None:
        self.query_one(PresetPicker).mark_edited(event.preset, bool(event.changes))
        self._show_start_hint()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reset_form":  # only where there are edits to discard
            form = self.query_one(ConfigForm)
            return bool(form.changes) and self.query_one(PresetPicker).current is not None
        return True

    def action_reset_form(self) -> None:
        form = self.query_one(ConfigForm)
        if form.preset is not None and form.changes:
            changes = form.changes
            form.reset()
            self.notify(f"{form.preset.name}: edits discarded ({changes}).")

    @on(OptionList.OptionHighlighted, "#presets")
    def _preset_chosen(self, event: OptionList.OptionHighlighted) -> None:
        picker = self.query_one(PresetPicker)
        switcher = self.query_one("#launch-what", ContentSwitcher)
        sweep, search = picker.current_sweep, picker.current_search
        self._show_start_hint()
        self.refresh_bindings()
        self.set_class(search is not None, "-search")
        if search is not None:
            switcher.current = "search-panel"
            self.search_panel.load(search)
            self._search_info(search, "")
            return
        if sweep is not None:
            switcher.current = "sweep-panel"
            self.sweep_panel.load(sweep)
            plan = self.sweep_panel.sweep
            about = plan.description if plan else ""
            self.query_one("#preset-info", Static).update(
                f"[b]sweep {sweep}[/b]: {about}\n[dim]Start runs the members not done yet, "
                "here or detached, one at a time or N in parallel; a rerun resumes them.[/dim]"
            )
            return
        switcher.current = "form"
        preset = picker.current
        if preset is None:
            return
        c = preset.config
        self.query_one("#preset-info", Static).update(
            f"[b]{preset.name}[/b] ({preset.study}): {preset.description}\n"
            f"[dim]{c.model} weights={c.weights} freeze={c.freeze} augment={c.augment} "
            f"lr={c.lr:g} epochs={c.epochs} step={c.step_size} gamma={c.gamma:g}[/dim]"
        )
        self.query_one(ConfigForm).load(preset, self.app.device)

    def _search_info(self, name: str, about: str) -> None:
        self.query_one("#preset-info", Static).update(
            f"[b]search {name}[/b]: {escape(about)}\n"
            "[dim]Start: trials here, or `tune` detached (1 or N)[/dim]"
        )

    @on(SearchPanel.Read)
    def _search_read(self, event: SearchPanel.Read) -> None:
        spec = event.read.spec
        if spec is not None and self.query_one(PresetPicker).current_search == spec.name:
            self._search_info(spec.name, spec.description)

    @on(OptionList.OptionSelected, "#presets")
    def _preset_picked(self) -> None:
        picker = self.query_one(PresetPicker)
        if picker.current_search is not None:
            self.query_one("#search-trials").focus()
        elif picker.current_sweep is not None:
            self.query_one("#sweep-members").focus()
        else:
            self.query_one("#lr").focus()

    @on(DataTable.RowSelected, "#sweep-members")
    def _member_selected(self) -> None:
        row = self.sweep_panel.row_at_cursor()
        if row is None:
            return
        if row.run_id is None:
            where = f" (claimed by {row.holder.describe()})" if row.elsewhere else ""
            self.notify(f"{row.member.name} has no run folder yet{where}.")
        elif row.status == RunStatus.RUNNING:  # trains in another process: follow it live
            self.app.action_show_view("watch")
            self.app.main.view("watch").follow(Run(self.app.runs_dir / row.run_id))
        else:
            self.app.push_screen(RunDetailScreen(Run(self.app.runs_dir / row.run_id)))

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
        if self.query_one(PresetPicker).current_sweep is not None:
            self._start_sweep()
            return
        if self.query_one(PresetPicker).current_search is not None:
            self._start_search()
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
        preset, overrides, config = form.preset.name, result.overrides, result.config
        self._ask_where(
            preset,
            lambda c: self.app.submit(preset, overrides, config, c.mode),
            changes=describe_start(overrides, config),
            runs=[(config, config.epochs)],
        )

    def _ask_where(
        self,
        what: str,
        start,
        parallel: ParallelOffer | None = None,
        changes: str = "",
        runs: list[tuple[RunConfig, int]] = (),
    ) -> None:
        """The Start dialog; `start(choice)` on a choice (remembered for the session). It shows
        `changes` and estimates how long `runs` (config, epochs) take, in a worker."""
        current = self.app.current_job
        data_dir = self.app.data_dir

        def chosen(choice: StartChoice | None) -> None:
            if choice is not None:
                self.app.start_mode = choice.mode
                self.app.start_parallel = choice.parallel or self.app.start_parallel
                start(choice)

        queued_behind = current.label if current else ""
        runs = list(runs)
        dialog = StartChoiceScreen(
            what,
            self.app.start_mode,
            queued_behind,
            parallel,
            changes,
            (lambda: estimate(runs, data_dir).describe()) if runs else None,
        )
        self.app.push_screen(dialog, chosen)

    def action_lr_find(self) -> None:
        """The LR range test of the form's config; its suggestion can go into the LR field."""
        form = self.query_one(ConfigForm)
        if self.app.data_problem:
            self.notify(self.app.data_problem, title="No dataset", severity="error")
            return
        if self.query_one(PresetPicker).current is None:
            self.notify("The range test runs one config: pick a preset, not a sweep or search.")
            return
        if self.app.current_job is not None:
            # it would share this process with the run: its reseeding and thread count too
            self.notify(
                "a run trains in this console: wait for it, or run `tui-trainer lr-find` in "
                "another terminal",
                title="LR find refused",
                severity="warning",
            )
            return
        result = form.check()
        if result.config is None or form.preset is None:
            message = next(iter(result.errors.values()), "choose a preset first")
            self.notify(message, title="LR find refused: fix the form", severity="error")
            return
        screen = LrFindScreen(result.config, form.preset.name, self.app.data_dir, self.app.runs_dir)
        self.app.push_screen(screen, self._lr_found)

    def _lr_found(self, lr: float | None) -> None:
        if lr is not None:
            self.query_one(ConfigForm).set_value("lr", format_lr(lr))
            self.notify(f"lr set to {format_lr(lr)} (the range test's suggestion)")
        # Start is the next step; back in a text field, "3" for Runs would be typed into it.
        self.query_one("#start", Button).focus()

    def _parallel_offer(
        self, members: int, device: str | None, command: str = "sweep", unit: str = "members"
    ) -> ParallelOffer | None:
        """The dialog's "N in parallel" row: for two members or more; N as last chosen, else
        one per CUDA GPU (none counted when the sweep is set to train on the CPU)."""
        if members < 2:
            return None
        gpus = 0 if (device or "").startswith("cpu") else cuda_gpus()
        count = self.app.start_parallel or default_parallel(gpus, members)
        return ParallelOffer(min(count, members), members, gpus, command, unit)

    def _start_sweep(self) -> None:
        panel = self.sweep_panel
        panel.resolve()  # the runs folder may have moved on since it was drawn
        if panel.sweep is None:
            self.query_one("#sweep-set").focus()
            self.notify(panel.error, title="Sweep refused: fix the overrides", severity="error")
            return
        members = panel.to_run()
        if not members:
            self.notify(f"{panel.sweep.name}: nothing to run ({panel.counts_line()}).")
            return
        sweep = panel.sweep
        # what the sweep command repeats: the typed overrides (parsed cleanly by resolve above)
        overrides, seeds = parse_sweep_input(self.query_one("#sweep-set").value, self.app.device)
        seed_count = None if seeds is None else len(seeds)

        def start(choice: StartChoice) -> None:
            if choice.mode == StartMode.IN_CONSOLE:
                self.app.submit_sweep(sweep, members)
            else:  # DETACHED one by one, or PARALLEL with its count
                self.app.detached.start_sweep(sweep, overrides, seed_count, choice.parallel)

        what = f"sweep {sweep.name} ({len(members)} to run)"
        device = members[0].config.device  # the preset's, or as typed for every member
        changes = " ".join(f"{k}={v}" for k, v in overrides.items())
        self._ask_where(
            what,
            start,
            self._parallel_offer(len(members), device),
            f"every member with {changes}" if changes else "",
            [(m.config, m.config.epochs) for m in members],
        )

    def _start_search(self) -> None:
        """Trials here (queued jobs of one trial each) or detached `tune` workers: all share
        the study through its journal, and the panel follows them from the runs folder."""
        panel, found = self.search_panel, self.search_panel.last
        refused = panel.refusal()
        if refused:
            self.notify(refused, title="Search not started", severity="warning")
            return
        left, overrides, trials = panel.trials_left(), dict(found.overrides), found.spec.trials

        def start(choice: StartChoice) -> None:
            if choice.mode == StartMode.IN_CONSOLE:  # one job per trial, sampled as it starts
                jobs = trial_jobs(self.app.job_numbers, found.spec, overrides, found.config, left)
                self.app.submit_jobs(jobs, f"search {found.name}: {left} trial(s) queued.")
            else:
                self.app.detached.start_search(found.name, overrides, trials, choice.parallel)

        changes = " ".join(f"{k}={v}" for k, v in overrides.items())
        self._ask_where(
            f"search {found.name} ({left} trial{'s' if left > 1 else ''} to run)",
            start,
            self._parallel_offer(left, found.config.device, "tune", "trials"),
            f"every trial with {changes}" if changes else "",
            [(found.config, found.epochs)] * left,
        )
