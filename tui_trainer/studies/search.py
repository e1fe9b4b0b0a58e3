"""A search's workers: each asks the study (Optuna) for a trial, trains it as an ordinary run
folder and tells the study how it ended. Any number of workers (`tune` processes, `--parallel`
children, Slurm array tasks) share one study through its storage.

Storage: a JournalStorage file in the runs folder (`<runs>/.studies/NAME.journal`: a dot folder,
so listings skip it), or `--storage URL` (an RDB). A trial is asked for under a file lock beside
the journal, so that finished + running trials never pass `trials`: the study stops there.

A worker killed mid-trial leaves its trial RUNNING in the study and its run folder crashed (or
interrupted, after a clean stop). The next worker, or a rerun, resumes that run folder from its
last.pt and reports it to the same trial: no epoch is trained twice, the sampled point is not
lost, and `trials` stays the count of trained trials. A trial whose worker died before its run
folder existed (during the first decode) had trained nothing: it is marked failed, and a new
trial is sampled in its place. A worker stamps its trial every heartbeat interval, so one on
another host is seen gone by the owner rule (no stamp for STALE_AFTER intervals plus the clock
skew) even before its run folder, and its owner.json, exist.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from tui_trainer.config import RunConfig
from tui_trainer.errors import ConfigError
from tui_trainer.events import Epoch, EventCallback, RunEnded, RunStarted, RunStatus
from tui_trainer.runs import owner
from tui_trainer.runs.status import RESUMABLE
from tui_trainer.runs.store import Run, find_run
from tui_trainer.studies.search_spec import SearchSpec

STUDIES_DIR = ".studies"
# trial user attributes: the run folder, and the process that trains it
RUN_ATTR, OWNER_ATTR = "run_id", "owner"
BEAT_ATTR = "beat_at"  # the worker's last stamp (its wall clock), every heartbeat interval


def journal_path(runs_dir: Path, name: str) -> Path:
    return runs_dir / STUDIES_DIR / f"{name}.journal"


def storage_for(runs_dir: Path, name: str, url: str | None = None):
    """The study's storage: the RDB at `url`, else the runs folder's journal file."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url:
        return url
    path = journal_path(runs_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def make_pruner(spec: SearchSpec):
    import optuna

    settings = dict(spec.pruner_settings)
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(**settings)
    if spec.pruner == "hyperband":
        settings.setdefault("max_resource", "auto")
        return optuna.pruners.HyperbandPruner(**settings)
    if spec.pruner == "threshold":
        return optuna.pruners.ThresholdPruner(**settings)
    return optuna.pruners.NopPruner()


def make_sampler(spec: SearchSpec, offset: int):
    """Seeded with the file's seed plus the number of trials so far: a rerun samples the same
    points, and two workers asking in turn never draw the same random start-up trial."""
    import optuna

    seed = spec.seed + offset
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = min(10, max(2, spec.trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def open_study(spec: SearchSpec, runs_dir: Path, url: str | None = None, offset: int = 0):
    import optuna

    try:
        return optuna.create_study(
            study_name=spec.name,
            storage=storage_for(runs_dir, spec.name, url),
            sampler=make_sampler(spec, offset),
            pruner=make_pruner(spec),
            direction=spec.direction,
            load_if_exists=True,
        )
    except (ValueError, ImportError) as exc:  # a study of another direction, a bad URL
        raise ConfigError(f"study {spec.name}: {exc}") from None


def suggest(trial, spec: SearchSpec) -> dict[str, Any]:
    """The trial's point in the space, as config overrides."""
    params = {}
    for p in spec.space:
        if p.kind == "categorical":
            params[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.kind == "int":
            params[p.key] = trial.suggest_int(p.key, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            params[p.key] = trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)
    return params


@dataclass
class Job:
    """One trial for this worker: a new one, or one to resume in its run folder."""

    study: Any  # optuna.Study
    trial: Any  # optuna.Trial
    params: dict[str, Any]
    resume: Run | None = None


@dataclass(frozen=True)
class Worker:
    """What every trial of this worker shares."""

    spec: SearchSpec
    base: RunConfig
    overrides: dict[str, Any]  # --set, --device: on top of the base preset, under the params
    runs_dir: Path
    data_dir: Path
    storage: str | None = None

    def config_for(self, params: dict[str, Any]) -> RunConfig:
        return self.base.with_overrides({**self.overrides, **params})


@contextlib.contextmanager
def study_lock(runs_dir: Path, name: str) -> Iterator[None]:
    path = journal_path(runs_dir, name).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


def next_job(worker: Worker) -> Job | None:
    """A trial to resume, else a new one while finished + running trials are under `trials`;
    None: nothing left for this worker."""
    from optuna.trial import Trial, TrialState

    spec = worker.spec
    with study_lock(worker.runs_dir, spec.name):
        study = open_study(spec, worker.runs_dir, worker.storage)
        trials = study.get_trials(deepcopy=False)
        for frozen in trials:
            if frozen.state == TrialState.RUNNING and _orphaned(frozen, worker.runs_dir):
                run = _run_of(frozen, worker.runs_dir)
                study._storage.set_trial_user_attr(frozen._trial_id, OWNER_ATTR, _me())
                study._storage.set_trial_user_attr(frozen._trial_id, BEAT_ATTR, time.time())
                if run is None:  # died before its run folder: nothing trained, sample anew
                    study._storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
                    continue
                job = Job(study, Trial(study, frozen._trial_id), frozen.params, resume=run)
                status = run.status()
                if status in RESUMABLE:
                    return job
                # its run ended but the study was not told (killed in between): tell it now
                tell(spec, job, run, RunEnded(run_id=run.id, status=status))
        counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        if sum(t.state in counted for t in study.get_trials(deepcopy=False)) >= spec.trials:
            return None
        if sum(t.state == TrialState.FAIL for t in trials) >= spec.trials:
            return None  # as many failed as wanted: a config problem, not bad luck; stop
        study.sampler = make_sampler(spec, len(trials))
        trial = study.ask()
        trial.set_user_attr(OWNER_ATTR, _me())
        params = suggest(trial, spec)
        worker.config_for(params)  # a point the config refuses fails here, told before training
        return Job(study, trial, params)


def _me() -> dict[str, Any]:
    return {**owner.this_process(), "interval": owner.heartbeat_interval()}


def _orphaned(frozen, runs_dir: Path) -> bool:
    """A RUNNING trial whose worker is gone: dead on this host; another host's, its stamps
    stopped and its run folder, if it has one, says crashed, stale or stopped."""
    who = frozen.user_attrs.get(OWNER_ATTR) or {}
    here = who.get("host") == owner.this_process()["host"]
    if here and isinstance(who.get("pid"), int):
        if owner.same_process(who["pid"], who.get("create_time")):
            return False
        return True
    if not _silent(frozen, who):  # a fresh stamp: its worker trains it (or just claimed it)
        return False
    run = _run_of(frozen, runs_dir)
    return run is None or run.status() in RESUMABLE


def _silent(frozen, who: dict[str, Any]) -> bool:
    """The owner rule (`owner.silent`) on the trial's last stamp, else its start."""
    stamp = frozen.user_attrs.get(BEAT_ATTR)
    if not isinstance(stamp, (int, float)):
        started = frozen.datetime_start
        stamp = started.timestamp() if started is not None else None
    return stamp is not None and owner.silent(stamp, who.get("interval"))


@contextlib.contextmanager
def stamping(job: Job) -> Iterator[None]:
    """Stamp the job's trial (BEAT_ATTR) now and every heartbeat interval while it trains."""
    storage, trial_id = job.study._storage, job.trial._trial_id
    done = threading.Event()

    def beat() -> None:
        while True:
            # a trial told finished in between refuses the stamp: nothing to keep alive then
            with contextlib.suppress(Exception):
                storage.set_trial_user_attr(trial_id, BEAT_ATTR, time.time())
            if done.wait(owner.heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, name="tui-trainer-trial-stamp", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


def _run_of(frozen, runs_dir: Path) -> Run | None:
    run_id = frozen.user_attrs.get(RUN_ATTR)
    if not run_id:
        return None
    try:
        return find_run(runs_dir, run_id)
    except Exception:  # noqa: BLE001 - a folder deleted by hand: the trial has no run
        return None


def trial_meta(spec: SearchSpec, number: int, params: dict[str, Any]) -> dict[str, Any]:
    """config.json's tags for a trial's run: the search, the trial number, its point."""
    return {"search": spec.name, "trial": number, "search_params": params}


class Judge:
    """The engine's per-epoch judge for one trial: reports the objective's best so far and asks
    the pruner; the reason to stop, or None."""

    def __init__(self, spec: SearchSpec, trial) -> None:
        self.spec, self.trial = spec, trial
        kept = trial.study._storage.get_trial(trial._trial_id).intermediate_values
        self.best = _best(spec, kept.values())

    def __call__(self, event: Epoch) -> str | None:
        value = float(getattr(event, self.spec.figure))
        self.best = _best(self.spec, [value] if self.best is None else [self.best, value])
        if self.best is None:
            return None
        self.trial.report(self.best, event.epoch)
        if self.trial.should_prune():
            return (
                f"pruned by the {self.spec.pruner} pruner after epoch {event.epoch} "
                f"({self.spec.objective} {self.best:.4f})"
            )
        return None


def _best(spec: SearchSpec, values) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if spec.direction == "maximize" else min(finite)


def run_value(spec: SearchSpec, run: Run | None) -> float | None:
    """The objective of a run folder: its best epoch by the objective's figure."""
    return None if run is None else rows_value(spec, run.epochs())


def rows_value(spec: SearchSpec, rows: list[dict[str, Any]]) -> float | None:
    """The objective over a run's epoch rows: the best epoch by the objective's figure."""
    return _best(spec, [row.get(spec.figure) for row in rows])


def train_job(
    worker: Worker, job: Job, on_event: EventCallback | None, stop
) -> tuple[Run | None, RunEnded]:
    """Train the job's trial (fresh or resumed) and tell the study how it ended: completed and
    pruned count; diverged and failed are failed trials; a stop leaves it to be resumed."""
    judge = Judge(worker.spec, job.trial)

    def noting(event) -> None:
        if isinstance(event, RunStarted) and job.resume is None:
            job.trial.set_user_attr(RUN_ATTR, event.run_id)
        if on_event is not None:
            on_event(event)

    with stamping(job):
        run, ended = _train(worker, job, noting, stop, judge)
    tell(worker.spec, job, run, ended)
    return run, ended


def _train(worker: Worker, job: Job, noting, stop, judge) -> tuple[Run | None, RunEnded]:
    from tui_trainer.runs.launch import resume_run, start_run

    if job.resume is not None:
        return resume_run(
            job.resume.id,
            runs_dir=worker.runs_dir,
            data_dir=worker.data_dir,
            on_event=noting,
            stop=stop,
            judge=judge,
        )
    number = job.trial.number
    return start_run(
        worker.config_for(job.params),
        preset=worker.spec.base,
        overrides={**worker.overrides, **job.params},
        data_dir=worker.data_dir,
        runs_dir=worker.runs_dir,
        on_event=noting,
        stop=stop,
        name=f"{worker.spec.name}-t{number}",
        extra_meta=trial_meta(worker.spec, number, job.params),
        judge=judge,
    )


def tell(spec: SearchSpec, job: Job, run: Run | None, ended: RunEnded) -> None:
    from optuna.trial import TrialState

    if ended.status == RunStatus.INTERRUPTED and run is not None:
        return  # resumable: the trial stays running, the next worker resumes its folder
    value = run_value(spec, run)
    if ended.status == RunStatus.COMPLETED and value is not None:
        job.study.tell(job.trial.number, value)
    elif ended.status == RunStatus.PRUNED:
        job.study.tell(job.trial.number, state=TrialState.PRUNED)
    else:
        job.study.tell(job.trial.number, state=TrialState.FAIL)


def run_worker(
    worker: Worker,
    stop: threading.Event,
    on_event: EventCallback | None = None,
    on_job: Callable[[Job], None] | None = None,
) -> list[RunEnded]:
    """Train trials until the study has `trials` of them (or a stop, or a run that failed);
    each trial's RunEnded, in order."""
    ends: list[RunEnded] = []
    while not stop.is_set():
        job = next_job(worker)
        if job is None:
            break
        if on_job is not None:
            on_job(job)
        _, ended = train_job(worker, job, on_event, stop)
        ends.append(ended)
        if ended.status in (RunStatus.INTERRUPTED, RunStatus.FAILED):
            break
    return ends
