"""A search on the Launch view: its space and budget, then its trials live, the optimization
history and, once enough trials finished, the parameter importances.

Everything it shows comes from a thread worker (`read_search`: the search file, the base preset,
the study's journal and the trials' run folders) that posts a `SearchPanel.Read`; the UI thread
never reads the disk. It rereads every REFRESH_S seconds while on screen, and when the app's
runs change (`reread`), whoever trains the trials: a detached `tui-trainer tune`, its
`--parallel` workers, Slurm tasks or another terminal. Hidden, it reads nothing.

The overrides field takes `key=value` words for every trial (tune's `--set`; `trials=N` is its
`--trials N`); a key the search samples cannot be fixed too. Rows: `*` marks the best trial;
pruned trials read as such, with the epochs they trained before the pruner stopped them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, Static
from textual_plotext import PlotextPlot

from tui_trainer.config import RunConfig, parse_set_options
from tui_trainer.errors import UserError
from tui_trainer.runs.store import Run
from tui_trainer.studies import search
from tui_trainer.studies.search_spec import Param, SearchSpec, load_search, trial_epochs
from tui_trainer.studies.search_view import StudyView, TrialRecord, study_view
from tui_trainer.tui.screens.run_detail import RunDetailScreen

REFRESH_S = 2.0
# Optuna's trial state -> what the row reads, and its style
STATE_LOOK = {
    "complete": ("✓ complete", "green"),
    "running": ("▶ running", "bold cyan"),
    "pruned": ("✂ pruned", "yellow"),
    "fail": ("✗ failed", "red"),
    "waiting": ("· waiting", ""),
}
BEST_MARK = "*"
BAR = 12  # an importance of 1.0 as a bar of this many cells


@dataclass(frozen=True)
class SearchRead:
    """One read of a search: its spec and the overrides that applied, the epochs a trial trains
    and the study (None before its first trial); `error` instead when the file or the overrides
    are wrong."""

    name: str
    text: str  # the overrides as typed
    spec: SearchSpec | None = None
    overrides: dict[str, str] | None = None  # tune's --set (the app's device included)
    config: RunConfig | None = None  # the base preset with the overrides
    epochs: int = 0
    view: StudyView | None = None
    error: str = ""


def read_search(name: str, text: str, runs_dir: Path, device: str | None) -> SearchRead:
    """Reads files: call it in a thread."""
    try:
        overrides = parse_set_options(text.split())
        trials = overrides.pop("trials", None)
        if trials is not None and not (trials.isdecimal() and trials.isascii()):
            raise UserError(f"trials={trials}: a whole number, e.g. trials=8")
        spec, base = load_search(name, trials=None if trials is None else int(trials))
        fixed = [k for k in overrides if any(p.key == k for p in spec.space)]
        if fixed:
            raise UserError(f"{fixed[0]} is searched: it cannot be set for every trial")
        if device and "device" not in overrides:
            overrides["device"] = device
        config = base.with_overrides(overrides)
    except UserError as exc:
        return SearchRead(name, text, error=f"override field: {exc}")
    epochs = trial_epochs(spec, config)
    view = None
    if search.journal_path(runs_dir, name).exists():  # reading never creates the study
        view = study_view(runs_dir, spec)
    return SearchRead(name, text, spec, overrides, config, epochs, view)


def fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trial_cells(trial: TrialRecord) -> tuple[Any, ...]:
    text, style = STATE_LOOK.get(trial.state, (trial.state, ""))
    number = f"{BEST_MARK}{trial.number}" if trial.best else str(trial.number)
    value = "-" if trial.value is None else f"{trial.value:.3f}"
    params = " ".join(f"{k}={fmt(v)}" for k, v in trial.params.items())
    epochs = f"{trial.epochs_done}/{trial.epochs}"
    return (number, Text(text, style=style), epochs, value, params)


def steps(xs: list[int], ys: list[float]) -> tuple[list[float], list[float]]:
    """The best so far as a staircase: it holds until the next trial that beats it."""
    sx, sy = [], []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if i:
            sx.append(x)
            sy.append(ys[i - 1])
        sx.append(x)
        sy.append(y)
    return sx, sy


class HistoryPlot(PlotextPlot):
    """Each finished trial's value by trial number, and the best so far."""

    _points: tuple[list[int], list[float], list[float]] = ([], [], [])

    def replot(self, view: StudyView | None) -> None:
        history = view.history if view else []
        self._points = (
            [p.number for p in history],
            [p.value for p in history],
            [p.best_so_far for p in history],
        )
        self.refresh()

    def render(self):
        plt = self.plt
        plt.clear_figure()
        plt.title("Optimization history")
        numbers, values, best = self._points
        if numbers:
            plt.plot(*steps(numbers, best), label="best so far")
            plt.scatter(numbers, values, label="trial", marker="dot")
            if len(numbers) <= 12:  # whole trial numbers, not 0.75
                plt.xticks(numbers)
        plt.xlabel("trial")
        return super().render()


class TrialTable(DataTable):
    """The trials; enter (shown in the key bar) opens the trial's run."""

    BINDINGS = [Binding("enter", "select_cursor", "Open run", show=True)]


class SearchPanel(VerticalScroll):
    class Read(Message):
        def __init__(self, read: SearchRead) -> None:
            super().__init__()
            self.read = read

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.search_name: str | None = None
        self.last: SearchRead | None = None

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="key=value ... for every trial, e.g. classes=5 epochs=10 trials=8",
            id="search-set",
            compact=True,
        )
        yield Static("", id="search-error")
        yield Static("reading the search...", id="search-budget")
        # the trials first, what a person watches; the space, read once, below the plots
        table = TrialTable(id="search-trials", cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "STATE", "EPOCHS", "VALUE", "PARAMS")  # PARAMS last: cut first
        yield table
        yield HistoryPlot(id="search-history")
        yield Static("", id="search-importances")
        yield Static("", id="search-space")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self._tick)

    @property
    def spec(self) -> SearchSpec | None:
        return self.last.spec if self.last else None

    @property
    def view(self) -> StudyView | None:
        return self.last.view if self.last else None

    def load(self, name: str) -> None:
        if name != self.search_name:
            self.search_name, self.last = name, None
            self.query_one("#search-budget", Static).update("reading the search...")
            self.reread()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.reread()

    def _tick(self) -> None:
        if self.is_on_screen:
            self.reread()

    def reread(self) -> None:
        """Read the search in a thread; `Read` lands in `on_search_panel_read`."""
        if self.search_name is None:
            return
        name, text = self.search_name, self.query_one("#search-set", Input).value
        runs_dir, device = self.app.runs_dir, self.app.device

        def read() -> None:
            try:
                found = read_search(name, text, runs_dir, device)
            except (OSError, RuntimeError, ValueError) as exc:  # a journal mid-write: retried
                found = SearchRead(name, text, error=f"could not read the study: {exc}")
            self.post_message(self.Read(found))

        self.run_worker(read, thread=True, exclusive=True, group="search-read", exit_on_error=False)

    def on_search_panel_read(self, message: Read) -> None:
        found = message.read
        if found.name != self.search_name or found == self.last:
            return
        self.last = found
        self._draw()

    def _draw(self) -> None:
        found = self.last
        self.set_class(bool(found.error), "-invalid")
        self.query_one("#search-error", Static).update(escape(found.error))
        if found.spec is None:
            return
        self.query_one("#search-space", Static).update(escape(space_text(found.spec)))
        self.query_one("#search-budget", Static).update(budget_text(found))
        table = self.query_one("#search-trials", DataTable)
        keep = table.cursor_row
        table.clear()
        trials = found.view.trials if found.view else []
        for trial in trials:
            table.add_row(*trial_cells(trial))
        if trials:
            table.move_cursor(row=min(keep, len(trials) - 1))
        table.display = bool(trials)
        self.query_one(HistoryPlot).display = bool(found.view and found.view.history)
        self.query_one(HistoryPlot).replot(found.view)
        self.query_one("#search-importances", Static).update(importances_text(found.view))

    def trial_at_cursor(self) -> TrialRecord | None:
        trials = self.view.trials if self.view else []
        row = self.query_one("#search-trials", DataTable).cursor_row
        return trials[row] if 0 <= row < len(trials) else None

    def refusal(self) -> str | None:
        """Why Start cannot run the search now (a bad override, the study has its trials)."""
        found = self.last
        if found is None or found.spec is None or found.config is None:
            return found.error if found else "the search is still being read"
        if not self.trials_left():
            return f"{found.name}: the study has its {found.spec.trials} trials"
        return None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a trial: its run, followed live while it trains (in any process)."""
        event.stop()
        trial = self.trial_at_cursor()
        if trial is None:
            return
        if trial.run_id is None:
            self.notify(f"trial {trial.number} has no run folder yet (decoding the images).")
            return
        run = Run(self.app.runs_dir / trial.run_id)
        if trial.state == "running":
            self.app.action_show_view("watch")
            self.app.main.view("watch").follow(run)
        else:
            self.app.push_screen(RunDetailScreen(run))

    def trials_left(self) -> int:
        """Trials the study still needs (finished ones count; running ones are resumed)."""
        if self.spec is None:
            return 0
        done = self.view.budget.trials_finished if self.view else 0
        return max(0, self.spec.trials - done)


def describe(param: Param) -> str:
    """`lr 0.001..0.1 log`, `step_size 5..25 step 5`, `gamma 0.1|0.3|0.5`: short enough to
    put the whole space in two or three lines."""
    if param.kind == "categorical":
        return f"{param.key} {'|'.join(map(str, param.choices))}"
    scale = " log" if param.log else ""
    step = f" step {param.step}" if param.step is not None else ""
    return f"{param.key} {param.low}..{param.high}{scale}{step}"


def space_text(spec: SearchSpec) -> str:
    """The space, then how trials are sampled, judged and pruned."""
    settings = " ".join(f"{k}={v}" for k, v in spec.pruner_settings.items())
    how = f"{spec.objective} · {spec.sampler} sampler, seed {spec.seed} · {spec.pruner} pruner"
    return "space: " + " · ".join(map(describe, spec.space)) + f"\n{how} {settings}".rstrip()


def budget_text(found: SearchRead) -> str:
    spec, view = found.spec, found.view
    full = spec.trials * found.epochs
    line = f"budget: {spec.trials} trials x {found.epochs} epochs = {full} epochs"
    if view is None:
        return line + " at most; pruned trials stop early · no trial yet"
    b = view.budget
    best = view.best
    found_best = f" · best {best.value:.3f} (trial {best.number})" if best and best.value else ""
    return (
        f"budget: {b.epochs_trained} of {b.epochs_full} epochs trained ({b.fraction:.0%}) · "
        f"{b.trials_finished} of {b.trials} trials finished{found_best}"
    )


def importances_text(view: StudyView | None) -> str:
    if view is None or not view.history:
        return ""
    if view.importances is None:
        return "[dim]importances: once 2 trials completed[/dim]"
    width = max(len(k) for k in view.importances)
    lines = ["parameter importances:"]
    for key, value in view.importances.items():
        lines.append(f"  {key:<{width}} {'█' * round(value * BAR):<{BAR}} {value:.2f}")
    return "\n".join(lines)
