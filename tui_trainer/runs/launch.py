"""Start a run end to end: the one function the CLI and the TUI both call.

config -> prepare (all bad input fails here, before anything is written) -> run folder ->
engine.train with the run writer subscribed -> summary.json -> a completed run's last.pt removed
(unless `keep_last=true`)

A stop during prepare (the first decode of the images can take minutes) ends the run `interrupted`
with no folder: the Run returned is None, and nothing was written (the decode cache included).
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision

from tui_trainer.config import RunConfig
from tui_trainer.data.layout import find_layout, list_classes, resolve_data_dir
from tui_trainer.errors import STORAGE_ERRNOS, Stopped, StorageError, UserError
from tui_trainer.events import EventCallback, RunEnded, RunStatus, fan_out
from tui_trainer.runs import owner
from tui_trainer.runs.results import save_test_results
from tui_trainer.runs.resume import check_resumable, rewind
from tui_trainer.runs.status import FINISHED
from tui_trainer.runs.store import Run, create_run, ensure_writable, find_run
from tui_trainer.runs.writer import RunWriter
from tui_trainer.train import engine
from tui_trainer.train.checkpoint import Checkpoint, remove_last
from tui_trainer.train.hardware import resolve_device
from tui_trainer.train.host import is_main_process
from tui_trainer.train.precision_probe import PrecisionChoice, decide
from tui_trainer.train.system_sampler import reset_torch_peak, start_sampler
from tui_trainer.train.topology import Topology


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_metadata(
    prep: engine.Prepared,
    preset: str,
    overrides: dict[str, Any],
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """config.json's content; `extra_meta` adds tags such as the sweep a run belongs to."""
    return {
        "config": prep.config.to_dict(),
        "preset": preset,
        "overrides": {k: str(v) for k, v in overrides.items()},
        "data_dir": str(prep.data_dir.resolve()),
        "split_source": prep.splits.split_source,
        "classes": prep.splits.classes,
        "device": str(prep.device),
        "precision": prep.precision,  # what the run trains in; a resume reads it from here
        # precision=auto's measurement: beside the config, which keeps `auto` (runs compare)
        "precision_probe": prep.precision_probe.to_record() if prep.precision_probe else None,
        "fast_paths": prep.fast_paths,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "git_revision": _git_revision(),
        **(extra_meta or {}),
        "distributed": prep.topology.describe(prep.config),  # world size and per-rank batch
    }


def start_run(  # noqa: PLR0913 - keyword-only, each names one part of the request
    config: RunConfig,
    *,
    preset: str,
    overrides: dict[str, Any],
    data_dir: Path,
    runs_dir: Path,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    name: str | None = None,
    extra_meta: dict[str, Any] | None = None,
    judge: engine.Judge | None = None,
) -> tuple[Run | None, RunEnded]:
    """Prepare, create the run folder, train. Raises UserError before creating anything; a stop
    before training returns (None, interrupted), nothing created.

    Under torchrun every rank prepares (and fails on bad input) alike; rank 0 alone creates the
    folder and the others learn its path. `judge` (a search's pruner) may end it `pruned`."""
    stop = stop or threading.Event()
    topology = Topology.join(config)
    topology.from_main(lambda: ensure_writable(runs_dir))
    say = topology.main_only(on_event)
    try:
        prep = _prepare(config, data_dir, say, stop, topology)
    except Stopped as exc:
        return None, _stopped_before_training(
            topology, "", say, f"{exc}: no run folder was created"
        )
    meta = run_metadata(prep, preset, overrides, extra_meta)
    run = topology.from_main(lambda: create_run(runs_dir, meta, preset, name))
    with owner.hold(run.path if topology.is_main else None, f"run {run.id}") as claim:
        claim.started = True
        return run, _train_into(run, prep, on_event, stop, resume=None, judge=judge)


def resume_run(
    run_id: str,
    *,
    runs_dir: Path,
    data_dir: Path | None = None,
    device: str | None = None,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    judge: engine.Judge | None = None,
) -> tuple[Run, RunEnded]:
    """Continue an interrupted, crashed, stale or failed run in its own folder from its last
    completed epoch (from the start if none completed). Raises UserError before touching the
    folder (one naming the holder if another process holds it); a stop before training returns
    `interrupted` and leaves the folder as it was. The folder stays locked to this process from
    the check to the end (runs/owner.py)."""
    run = find_run(runs_dir, run_id)
    check = functools.partial(check_resumable, run)
    check()  # every read-only refusal before the lock: a refused resume never touches the folder
    inputs = _ResumeInputs.read(run, data_dir, device)
    # checked again under the lock: of two resumes at once, the second sees the first's claim
    with owner.hold(run.path if is_main_process() else None, f"run {run.id}", check) as claim:
        inputs = inputs.fresh(run)
        return run, _resume(run, inputs, on_event, stop or threading.Event(), claim, judge)


@dataclass(frozen=True)
class _ResumeInputs:
    """What a resume continues from, read and checked before the folder is locked."""

    config: RunConfig
    checkpoint: Checkpoint | None  # None: no epoch finished, the run starts again
    checkpoint_stamp: tuple[int, int] | None  # last.pt's (mtime_ns, size) when it was read
    data_dir: Path
    precision: str  # the one the run recorded: a resume never measures again

    @classmethod
    def read(cls, run: Run, data_dir: Path | None, device: str | None) -> _ResumeInputs:
        meta = run.meta()
        if not meta.get("config"):
            raise UserError(f"run {run.id} has no readable config.json: start a new run instead")
        config = RunConfig.from_dict(meta["config"])
        if device:
            config = config.with_overrides({"device": device})
        stamp = _stamp(run.last_path)
        checkpoint = Checkpoint.load(run.path) if stamp else None
        # The data the run started on, unless told otherwise: the splits must match last.pt's head.
        recorded = Path(meta["data_dir"]) if meta.get("data_dir") else None
        data_dir = data_dir or recorded or resolve_data_dir(None)
        classes = list_classes(find_layout(data_dir).images_dir, config.classes)
        if meta.get("classes") and classes != meta["classes"]:
            raise UserError(
                f"the classes in {data_dir} differ from run {run.id}'s: pass --data with the "
                "folder it was started on"
            )
        return cls(config, checkpoint, stamp, data_dir, _recorded_precision(run, meta, config))

    def fresh(self, run: Run) -> _ResumeInputs:
        """The same, with last.pt read again if another process rewrote it before the lock."""
        stamp = _stamp(run.last_path)
        if stamp == self.checkpoint_stamp:
            return self
        checkpoint = Checkpoint.load(run.path) if stamp else None
        return dataclasses.replace(self, checkpoint=checkpoint, checkpoint_stamp=stamp)


def _recorded_precision(run: Run, meta: dict[str, Any], config: RunConfig) -> str:
    """The precision the run trained in. A config.json without one (written by hand): the
    config's own, fp32 for `auto` (right on every device)."""
    recorded = meta.get("precision")
    if recorded not in ("fp32", "bf16", "fp16"):
        recorded = "fp32" if config.precision == "auto" else config.precision
    if recorded == "fp16" and resolve_device(config.device).type == "cpu":
        raise UserError(
            f"run {run.id} trains in fp16, which is for GPUs: resume it where one is visible "
            "(--device cuda)"
        )
    return recorded


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def _resume(run: Run, inputs: _ResumeInputs, on_event, stop, claim: owner.Hold, judge) -> RunEnded:
    topology = Topology.join(inputs.config)
    say = topology.main_only(on_event)
    try:
        recorded = PrecisionChoice(inputs.precision)
        prep = _prepare(inputs.config, inputs.data_dir, say, stop, topology, recorded)
    except Stopped as exc:
        message = f"{exc}: {run.path} is as it was"
        return _stopped_before_training(topology, run.id, say, message)
    resume = inputs.checkpoint
    # last of the checks: ensure_writable's probe file touches the folder
    topology.from_main(lambda: (ensure_writable(run.path), rewind(run, resume)))
    claim.started = True  # the summary names this process now
    return _train_into(run, prep, on_event, stop, resume, judge)


def _prepare(config, data_dir, say, stop, topology: Topology, precision=None) -> engine.Prepared:
    """engine.prepare on every rank; a stop on any rank raises `Stopped` on all of them. Under
    torchrun rank 0 decides the precision (precision=auto measures) and every rank uses it."""
    if precision is None and topology.active:
        threads = topology.threads_per_rank(config.threads)
        precision = topology.from_main(
            lambda: decide(config, topology.device, threads, stop, say, topology.world_size)
        )
    return topology.agree(
        lambda: engine.prepare(config, data_dir, say, stop, topology, precision),
        local_main_first=True,
    )


def _stopped_before_training(
    topology: Topology, run_id: str, say: EventCallback, message: str
) -> RunEnded:
    """The outcome of a stop during prepare: told to the listeners like any other end."""
    ended = RunEnded(run_id=run_id, status=RunStatus.INTERRUPTED, message=message)
    say(ended)
    topology.shutdown()
    return ended


def _train_into(run: Run, prep: engine.Prepared, on_event, stop, resume, judge=None) -> RunEnded:
    """Train in `run`'s folder. Never raises: a run that breaks ends `failed` with one line;
    one whose folder cannot be written (disk full, quota, read-only: a StorageError) says
    which file, the free space and `--resume`, and when even its final summary could not be
    written, the returned message says so (the folder then reads `crashed`: resumable)."""
    topology = prep.topology
    main = topology.is_main  # under torchrun rank 0 alone writes the folder and reports
    reset_torch_peak(prep.device)  # the peak the sampler reads is this run's, not the process's
    # system.jsonl in its own thread; the writer stops it at the end and records its peaks
    sampler = start_sampler(run.path, topology, prep.device)
    writer = RunWriter(run, sampler.finish if sampler else None) if main else None
    listen = topology.main_only(fan_out(writer, on_event))
    # per-class accuracy and confusions of a completed run, written before its summary says so
    on_test = functools.partial(save_test_results, run.path) if main else None
    run_dir = run.path if main else None
    try:
        ended = engine.train(
            prep, listen, stop, run_dir, run.id, resume=resume, on_test=on_test, judge=judge
        )
    except Exception as exc:  # noqa: BLE001 - a run that breaks is recorded as failed, not lost
        ended = RunEnded(
            run_id=run.id,
            status=RunStatus.FAILED,
            message=_failure_message(topology, run, exc),
        )
        listen(ended)
    finally:
        if sampler is not None:
            sampler.stop()
        topology.shutdown()
    if writer is not None and writer.unsaved is not None:
        ended = dataclasses.replace(ended, message=_unsaved_message(ended, writer.unsaved))
    elif writer is not None and ended.status in FINISHED and not prep.config.keep_last:
        remove_last(run.path)  # summary.json says so by now: nothing will resume it
    return ended


def _failure_message(topology: Topology, run: Run, exc: Exception) -> str:
    if isinstance(exc, StorageError):  # the summary at the start; RunEnded's listeners
        return str(exc)
    path = Path(exc.filename) if isinstance(exc, OSError) and exc.filename else None
    # a file of the run folder (e.g. test_results.json); a full disk elsewhere is told as it is
    if path is not None and exc.errno in STORAGE_ERRNOS and path.parent == run.path:
        return str(StorageError(path, exc))
    return topology.failure_message(exc)


def _unsaved_message(ended: RunEnded, unsaved: StorageError) -> str:
    """One line for the terminal when summary.json kept its `running`: the first failure (or
    the run's own end) and that the folder is resumable."""
    if ended.message.startswith("cannot write "):
        return f"{ended.message} (summary.json not updated either: the run reads as crashed)"
    lead = f"{ended.status}: {ended.message}; " if ended.message else f"{ended.status}; "
    return f"{lead}{unsaved} (the run reads as crashed)"
