"""Runs the app was asked to train: the job, the queue that orders them, the states a job has in
the app, and where Start trains (the relay that turns engine events into messages is in
tui/relay.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from tui_trainer.config import RunConfig
from tui_trainer.events import EventCallback, RunEnded
from tui_trainer.runs.store import Run
from tui_trainer.studies.members import Skipped, train_member
from tui_trainer.studies.search_spec import SearchSpec
from tui_trainer.studies.sweep_file import Sweep, SweepMember
from tui_trainer.studies.sweeps import member_meta


class StartMode(StrEnum):
    """Where Start trains: this console's training thread (a run ends with the console, and
    waits in its queue when another trains), or a detached `tui-trainer run`/`sweep` child in
    its own session, which outlives the console and its terminal (runs/detached.py); for a
    sweep also a detached `tui-trainer sweep --parallel N`, N members at once."""

    IN_CONSOLE = "in-console"
    DETACHED = "detached"
    PARALLEL = "parallel"


@dataclass(frozen=True)
class StartChoice:
    """The Start dialog's answer: where to train, and for PARALLEL how many members at once."""

    mode: StartMode
    parallel: int | None = None  # set for StartMode.PARALLEL only


class JobState(StrEnum):
    """Where a job is in the app; once it trains, its run has a RunStatus like any other."""

    TRAINING = "training"  # the app's training thread is on it
    QUEUED = "queued"  # waiting in the app's queue


@dataclass
class Job:
    number: int
    preset: str
    overrides: dict[str, str]
    config: RunConfig
    sweep: str = ""  # the sweep this job is a member of, if any
    member: str = ""  # its member name: the run id ends with it, config.json records both
    # a sweep member's sweep and member: it trains under the member's claim (runs/claims.py),
    # so a `tui-trainer sweep` process or Slurm task on the same runs folder never trains it too
    plan: Sweep | None = None
    plan_member: SweepMember | None = None
    since: float = 0.0  # when its sweep was started here: a failure elsewhere since then is final
    resume: str = ""  # set: continue this run id in its own folder (as `run --resume ID`)
    # set: one trial of this search, asked of its study when the job starts (as `tune` does)
    search: SearchSpec | None = None

    @property
    def label(self) -> str:
        if self.resume:
            return f"#{self.number} resume {self.resume}"
        if self.search is not None:
            return f"#{self.number} search {self.search.name} (a trial)"
        if self.sweep:
            return f"#{self.number} {self.sweep}/{self.member}"
        changes = " ".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"#{self.number} {self.preset}" + (f" {changes}" if changes else "")

    def engine_tags(self) -> dict[str, Any]:
        """The engine's `name` and `extra_meta`: what tags a sweep member's run folder."""
        if not self.sweep:
            return {"name": None, "extra_meta": None}
        return {"name": self.member, "extra_meta": member_meta(self.sweep, self.member)}


@dataclass
class JobQueue:
    """Jobs waiting their turn, first one next. Editable: remove and move by job number."""

    jobs: list[Job] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def pop_next(self) -> Job | None:
        return self.jobs.pop(0) if self.jobs else None

    def remove(self, number: int) -> Job | None:
        for i, job in enumerate(self.jobs):
            if job.number == number:
                return self.jobs.pop(i)
        return None

    def move(self, number: int, delta: int) -> bool:
        """Move a job `delta` places (negative: sooner). False when it cannot move."""
        for i, job in enumerate(self.jobs):
            if job.number == number:
                j = i + delta
                if not 0 <= j < len(self.jobs):
                    return False
                self.jobs.insert(j, self.jobs.pop(i))
                return True
        return False

    def clear(self) -> None:
        self.jobs.clear()


# Nice value for the training thread (and the torch threads it starts): on a small machine the
# UI thread then gets a core as soon as it has work, instead of queueing behind the training.
TRAINING_NICE = 10


def lower_thread_priority() -> None:
    """Make the calling thread yield the CPU to normal-priority threads (Linux: per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), TRAINING_NICE)
    except (AttributeError, OSError):
        pass  # no per-thread priorities here: the run simply trains at normal priority


def train_job(
    job: Job,
    engine: Callable[..., tuple[Run | None, RunEnded]],
    data_dir: Path,
    runs_dir: Path,
    *,
    on_event: EventCallback,
    stop: threading.Event,
) -> tuple[Run | None, RunEnded | None, str]:
    """Train `job` with `engine` (runs.launch.start_run, or a test's stand-in) in the calling
    thread: (run, its end, "") — or (None, None, why) for a sweep member skipped under its
    claim (another process trains it, or it completed meanwhile). A sweep member trains under
    its claim, resumed where its run was left, as `tui-trainer sweep` trains it. A resume job's
    `engine` is runs.launch.resume_run (its checks and its lock, the data the run recorded),
    called as `tui-trainer run --resume ID` calls it."""
    if job.resume:
        return (*engine(job.resume, runs_dir=runs_dir, on_event=on_event, stop=stop), "")
    if job.search is not None:
        return train_trial(job, data_dir, runs_dir, on_event=on_event, stop=stop)

    def start(listener: EventCallback) -> tuple[Run | None, RunEnded]:
        return engine(
            job.config,
            preset=job.preset,
            overrides=job.overrides,
            data_dir=data_dir,
            runs_dir=runs_dir,
            on_event=listener,
            stop=stop,
            **job.engine_tags(),
        )

    if job.plan is None or job.plan_member is None:
        return (*start(on_event), "")
    done = train_member(
        job.plan, job.plan_member, data_dir=data_dir, runs_dir=runs_dir, since=job.since,
        on_event=on_event, stop=stop, start=start,
    )  # fmt: skip
    if isinstance(done, Skipped):
        return None, None, done.describe()
    return (*done, "")


def trial_jobs(
    numbers: Iterator[int], spec: SearchSpec, overrides: dict[str, str], config: RunConfig, n: int
) -> list[Job]:
    """`n` jobs of one trial each of search `spec` (`config`: its base with `overrides`)."""
    return [Job(next(numbers), spec.base, overrides, config, search=spec) for _ in range(n)]


def train_trial(
    job: Job, data_dir: Path, runs_dir: Path, *, on_event: EventCallback, stop: threading.Event
) -> tuple[Run | None, RunEnded | None, str]:
    """One trial of the job's search, as a `tune` worker trains it (a trial a dead worker left
    is resumed, else one is sampled now); skipped when the study has its trials, so queued
    trial jobs never train more than `trials` with the workers of other processes."""
    from tui_trainer.studies import search

    spec = job.search
    worker = search.Worker(spec, job.config, job.overrides, runs_dir, data_dir)
    trial = search.next_job(worker)
    if trial is None:
        return None, None, f"{spec.name} has its {spec.trials} trials (or they all train)"
    return (*search.train_job(worker, trial, on_event, stop), "")
