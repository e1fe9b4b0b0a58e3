"""A search's state as plain data, for the CLI's results and the console's panel (no UI here).

study_view(runs_dir, spec, storage=None) -> StudyView | None
    None while the study has no trial yet. Reads the study's storage and each trial's run
    folder; cheap enough to call every second or two.
StudyView.trials: list[TrialRecord]   by number
StudyView.history: list[HistoryPoint] finished trials in order: value and best so far
StudyView.importances: dict[str, float] | None   (>= 2 completed trials, else None)
StudyView.budget: Budget             epochs trained against trials x epochs
render_results(view, fmt) -> str    fmt: md | csv | json
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tui_trainer.studies import search
from tui_trainer.studies.search_spec import SearchSpec, trial_epochs

RESULT_FORMATS = ("md", "csv", "json")
TOP = 5  # the trials the results list first


@dataclass(frozen=True)
class TrialRecord:
    number: int
    params: dict[str, Any]
    state: str  # running | complete | pruned | fail (Optuna's), waiting
    epochs_done: int
    epochs: int  # what a trial trains when not pruned
    value: float | None  # the objective so far (running: its best epoch yet)
    run_id: str | None
    best: bool = False


@dataclass(frozen=True)
class HistoryPoint:
    number: int
    value: float
    best_so_far: float


@dataclass(frozen=True)
class Budget:
    epochs_trained: int
    epochs_full: int  # trials x epochs: what the same search spends without pruning
    trials_finished: int
    trials: int

    @property
    def fraction(self) -> float:
        return self.epochs_trained / self.epochs_full if self.epochs_full else 0.0


@dataclass(frozen=True)
class StudyView:
    name: str
    objective: str
    direction: str
    trials: list[TrialRecord]
    history: list[HistoryPoint]
    importances: dict[str, float] | None
    budget: Budget

    @property
    def best(self) -> TrialRecord | None:
        return next((t for t in self.trials if t.best), None)

    def top(self, n: int = TOP) -> list[TrialRecord]:
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        return sorted(done, key=lambda t: t.value, reverse=self.direction == "maximize")[:n]


def study_view(runs_dir: Path, spec: SearchSpec, storage: str | None = None) -> StudyView | None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = search.storage_for(runs_dir, spec.name, storage)
    try:
        study = optuna.load_study(study_name=spec.name, storage=store)
    except KeyError:
        return None
    frozen = study.get_trials(deepcopy=False)
    best_number = _best_number(study)
    epochs = _epochs_of(spec, runs_dir)
    trials = [_record(spec, t, runs_dir, epochs, best_number) for t in frozen]
    history = _history(spec, trials)
    done = sum(t.state in ("complete", "pruned") for t in trials)
    # a trial's run knows its epochs (--set epochs=N included); the preset's before any run
    full = max((t.epochs for t in trials if t.run_id), default=epochs)
    budget = Budget(sum(t.epochs_done for t in trials), spec.trials * full, done, spec.trials)
    return StudyView(
        spec.name, spec.objective, spec.direction, trials, history, _importances(study), budget
    )


def _epochs_of(spec: SearchSpec, runs_dir: Path) -> int:
    from tui_trainer.config import load_preset

    return trial_epochs(spec, load_preset(spec.base, spec.path.parent).config)


def _best_number(study) -> int | None:
    try:
        return study.best_trial.number
    except ValueError:  # no completed trial yet
        return None


def _record(spec: SearchSpec, frozen, runs_dir: Path, epochs: int, best: int | None):
    run = search._run_of(frozen, runs_dir)
    rows = run.epochs() if run is not None else []  # read once: the count and the value
    value = frozen.value if frozen.value is not None else search.rows_value(spec, rows)
    if run is not None:
        epochs = int(run.config().get("epochs", epochs))
    return TrialRecord(
        number=frozen.number,
        params=dict(frozen.params),
        state=frozen.state.name.lower(),
        epochs_done=len(rows),
        epochs=epochs,
        value=value,
        run_id=run.id if run is not None else frozen.user_attrs.get(search.RUN_ATTR),
        best=frozen.number == best,
    )


def _history(spec: SearchSpec, trials: list[TrialRecord]) -> list[HistoryPoint]:
    points, best = [], None
    for t in trials:
        if t.state != "complete" or t.value is None:
            continue
        best = search._best(spec, [t.value] if best is None else [best, t.value])
        points.append(HistoryPoint(t.number, t.value, best))
    return points


def _importances(study) -> dict[str, float] | None:
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return None
    import optuna

    try:
        with warnings.catch_warnings():  # "importances will be equal" on a few trials: shown
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # every completed trial at one point, a one-value space
        return None
    return {k: float(v) for k, v in found.items()}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "-" if value is None else str(value)


def result_data(view: StudyView) -> dict[str, Any]:
    best = view.best
    b = view.budget
    return {
        "search": view.name,
        "objective": view.objective,
        "direction": view.direction,
        "best": asdict(best) if best else None,
        "top": [asdict(t) for t in view.top()],
        "importances": view.importances,
        "budget": {**asdict(b), "fraction": round(b.fraction, 4)},
        "trials": [asdict(t) for t in view.trials],
    }


def render_results(view: StudyView, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result_data(view), indent=2) + "\n"
    if fmt == "csv":
        return _csv(view)
    return _markdown(view)


def _csv(view: StudyView) -> str:
    keys = sorted({k for t in view.trials for k in t.params})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial", "state", "epochs_done", "value", "best", "run_id", *keys])
    for t in view.trials:
        params = [t.params.get(k, "") for k in keys]
        writer.writerow([t.number, t.state, t.epochs_done, t.value, t.best, t.run_id, *params])
    return buf.getvalue()


def _markdown(view: StudyView) -> str:
    b, best = view.budget, view.best
    lines = [f"# Search {view.name}", ""]
    lines.append(f"objective: {view.objective} ({view.direction})")
    lines.append(
        f"budget: {b.epochs_trained} epochs trained of {b.epochs_full} (trials x epochs, "
        f"{b.fraction:.0%}); {b.trials_finished} of {b.trials} trials finished"
    )
    if best is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
        lines.append(f"best: trial {best.number} ({best.run_id}) {_fmt(best.value)}: {params}")
    lines += ["", "| trial | state | epochs | value | params |", "|---|---|---|---|---|"]
    for t in view.top() + [t for t in view.trials if t.state != "complete"]:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        mark = " (best)" if t.best else ""
        lines.append(
            f"| {t.number}{mark} | {t.state} | {t.epochs_done} | {_fmt(t.value)} | {params} |"
        )
    if view.importances:
        lines += ["", "| parameter | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in view.importances.items()]
    return "\n".join(lines) + "\n"
