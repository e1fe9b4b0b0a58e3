"""The run store: one folder per run, written and read by the CLI and the TUI alike.

    runs/<run-id>/config.json     resolved config + provenance (written once, atomically)
    runs/<run-id>/metrics.jsonl   append-only: {"kind": "step"|"epoch", ...} one object per line
    runs/<run-id>/summary.json    status and headline numbers (rewritten atomically)
    runs/<run-id>/system.jsonl    append-only: CPU, memory and GPU samples (train/system_metrics.py)
    runs/<run-id>/best.pt         best-val model weights
    runs/<run-id>/last.pt         full training state at the end of the last completed epoch
    runs/<run-id>/owner.json      while a process trains it: that process and its heartbeat
    runs/<run-id>/owner.lock      the OS lock that process holds (runs/owner.py)

Readers never trust a folder to be complete: a run killed at any moment still lists, with status
`crashed` once its process is gone (`stale` once another host's heartbeat stops).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.files import read_json, read_jsonl, write_json_atomic
from tui_trainer.inside import open_append
from tui_trainer.runs.owner import OWNER_FILE, Owner, parse_pid, process_identity
from tui_trainer.train.system_metrics import SYSTEM_FILE, SystemPeaks, SystemSample, read_samples

RUNS_ENV = "TUI_TRAINER_RUNS"


SUMMARY_FIELDS = (
    "best_epoch",
    "max_val_acc",
    "test_acc",
    "test_loss",
    "final_train_loss",
    "accuracy_gap",
    "loss_gap",
    "epochs_done",
    "seconds",
    "skipped_images",
)


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV) or "runs")


def ensure_writable(runs_dir: Path) -> Path:
    """Create the runs folder if needed and prove we can write in it, or raise UserError."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=runs_dir, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UserError(
            f"runs folder {runs_dir} is not writable ({exc.strerror}): "
            "pass --runs-dir DIR or set TUI_TRAINER_RUNS to a folder you can write"
        ) from None
    return runs_dir


def pid_alive(pid: int) -> bool:
    """A process `pid` exists on this host (one hidden from us counts)."""
    return process_identity(pid) is not None


# --- one run folder ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def best_path(self) -> Path:
        return self.path / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.path / "last.pt"

    def meta(self) -> dict[str, Any]:
        """config.json: {"config": {...}, "preset": ..., "overrides": ..., versions...}; a
        `config` that is not an object reads as {} (the run then matches nothing)."""
        meta = read_json(self.config_path)
        if not isinstance(meta.get("config", {}), dict):
            meta["config"] = {}
        return meta

    def config(self) -> dict[str, Any]:
        config = self.meta().get("config")
        return config if isinstance(config, dict) else {}

    def summary(self) -> dict[str, Any]:
        return _typed(read_json(self.summary_path))

    def metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl's rows; one holding a non-number where a number goes is skipped."""
        return [row for row in read_jsonl(self.metrics_path) if _numbers_fit(row)]

    def epochs(self) -> list[dict[str, Any]]:
        return self.curves()[1]

    def steps(self) -> list[dict[str, Any]]:
        return self.curves()[0]

    def curves(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(step rows, epoch rows) from one read of metrics.jsonl."""
        rows = self.metrics()
        return [m for m in rows if m.get("kind") == "step"], [
            m for m in rows if m.get("kind") == "epoch"
        ]

    @property
    def system_path(self) -> Path:
        return self.path / SYSTEM_FILE

    def system(self, tail_bytes: int | None = None) -> list[SystemSample]:
        """system.jsonl's samples (of its last `tail_bytes` only, if given); a line cut short
        by a kill is skipped."""
        return read_samples(self.system_path, tail_bytes)

    def system_peaks(self, summary: dict[str, Any] | None = None) -> SystemPeaks | None:
        """The peaks the summary recorded at the end, else (a run still going, or one that
        crashed) computed from system.jsonl; None without a sample."""
        summary = self.summary() if summary is None else summary
        recorded = SystemPeaks.from_record(summary.get("system"))
        if recorded is not None:
            return recorded
        peaks = SystemPeaks.of(self.system())
        return peaks if peaks.samples else None

    @property
    def owner_path(self) -> Path:
        return self.path / OWNER_FILE

    def status(self, summary: dict[str, Any] | None = None) -> RunStatus | str:
        """The summary's status, except that a `running` run is judged by its holder: `crashed`
        once that process is gone from this host, `stale` when another host's heartbeat stopped
        (runs/owner.py). `summary`: the summary the caller has just read, not read again."""
        summary = self.summary() if summary is None else summary
        status = _written_status(summary.get("status"), self.config_path.exists())
        if status is RunStatus.RUNNING:
            return self._liveness(summary)
        return status

    def _liveness(self, summary: dict[str, Any]) -> RunStatus:
        pid, host = summary.get("pid"), summary.get("host")
        owner = Owner.read(self.path)
        # a live owner holds the folder, also while a resume prepares and the summary still
        # names the process before it
        if owner is not None and (owner.live or owner.names(pid, host)):
            return owner.status
        # a run written before owner.json (or by a version without it): the pid alone
        alone = parse_pid(pid)
        if alone is None or (host == socket.gethostname() and not pid_alive(alone)):
            return RunStatus.CRASHED
        return RunStatus.RUNNING

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.summary_path, summary)

    def append_metric(self, row: dict[str, Any], sync: bool = False) -> None:
        # a symlink or FIFO planted as metrics.jsonl is refused, never written through
        with os.fdopen(open_append(self.metrics_path), "a") as fh:
            fh.write(json.dumps(row) + "\n")
            if sync:
                fh.flush()
                os.fsync(fh.fileno())


# What readers do arithmetic with or print as text: a value of another type (a hand edit, a
# hostile file in a shared runs folder) is dropped, so the field reads as missing.
SUMMARY_NUMBERS = frozenset(
    "started_at ended_at heartbeat epochs epochs_done best_epoch max_val_acc final_train_loss "
    "accuracy_gap loss_gap seconds skipped_images num_train num_val num_test test_acc "
    "test_loss".split()
)
SUMMARY_TEXTS = frozenset({"status", "message", "host", "device", "precision"})
ROW_NUMBERS = frozenset(
    "epoch step global_step loss lr seconds train_loss train_acc val_loss val_acc".split()
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _typed(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in summary.items()
        if not (k in SUMMARY_NUMBERS and not _is_number(v))
        and not (k in SUMMARY_TEXTS and not isinstance(v, str))
    }


def _numbers_fit(row: dict[str, Any]) -> bool:
    if row.get("kind") in ("epoch", "step") and type(row.get("epoch")) is not int:
        return False
    return all(v is None or _is_number(v) for k, v in row.items() if k in ROW_NUMBERS)


def _written_status(written: Any, has_config: bool) -> RunStatus | str:
    """summary.json's status; none yet is `running` once config.json is there. A value this
    version does not know (a hand edit, a newer version's) is shown as written: neither resumed
    nor rerun by a sweep, since nothing here knows what it means."""
    if not written:
        return RunStatus.RUNNING if has_config else RunStatus.CRASHED
    try:
        return RunStatus(written)
    except ValueError:
        return str(written)


MAX_LABEL_BYTES = 120  # leaves room for the stamp, a -N suffix and a temp file's prefix


def make_run_id(preset: str, name: str | None = None, when: datetime | None = None) -> str:
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
    label = name or preset
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label).strip("-.")
    # a folder name has 255 bytes at most: a long sweep member name must not fail the mkdir
    safe = safe.encode()[:MAX_LABEL_BYTES].decode(errors="ignore").strip("-.")
    return f"{stamp}-{safe or 'run'}"


def create_run(runs_dir: Path, meta: dict[str, Any], preset: str, name: str | None = None) -> Run:
    """Make a fresh folder (distinct even for runs started in the same second) with its config."""
    runs_dir = ensure_writable(runs_dir)
    base = make_run_id(preset, name)
    for n in range(1, 1000):
        path = runs_dir / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        run = Run(path)
        # summary first: readers list a folder once config.json is there, and then it is
        # `running`, never briefly `crashed` for want of a summary
        run.write_summary(initial_summary())
        write_json_atomic(run.config_path, meta)
        return run
    raise UserError(f"could not create a run folder under {runs_dir}: too many runs named {base}")


def initial_summary() -> dict[str, Any]:
    return {
        "status": RunStatus.RUNNING,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": time.time(),
        "epochs_done": 0,
    }


def find_run(runs_dir: Path, run_id: str) -> Run:
    """A run by full id or unique prefix/suffix, or UserError listing what to do. An id is a
    folder's name, never a path: nothing outside `runs_dir` is reached (`..`, `/`, a symlink
    pointing out)."""
    runs_dir = Path(runs_dir)
    _check_run_id(runs_dir, run_id)
    direct = runs_dir / run_id
    if (direct / "config.json").exists():
        if not _inside(runs_dir, direct):
            raise UserError(
                f"run {run_id!r} in {runs_dir} is a link to a folder outside it: "
                "refused, give the id of a run folder inside it"
            )
        return Run(direct)
    matches = [r for r in list_runs(runs_dir) if r.id.startswith(run_id) or r.id.endswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"no run {run_id!r} in {runs_dir}: see `tui-trainer runs` for the ids")
    raise UserError(f"run id {run_id!r} is ambiguous ({len(matches)} runs): give more of it")


def _check_run_id(runs_dir: Path, run_id: str) -> None:
    if not run_id.strip():
        raise UserError(f"run id is empty: give one from `tui-trainer runs` (in {runs_dir})")
    separators = {"/", "\\", os.sep, os.altsep or "/", "\0"}
    if run_id in (".", "..") or any(ch in run_id for ch in separators):
        raise UserError(
            f"run id {run_id!r} is a path, not a run id: give the name of a folder in "
            f"{runs_dir} (see `tui-trainer runs`), or pass --runs-dir for another folder"
        )


def _inside(runs_dir: Path, folder: Path) -> bool:
    """Whether `folder` (a symlink followed) is a folder directly inside `runs_dir`."""
    try:
        return folder.resolve(strict=True).parent == runs_dir.resolve(strict=True)
    except OSError:
        return False


def delete_run(run: Run) -> None:
    """Remove a run folder with its checkpoints; refuses a folder that is not a run's, and a
    symlink (to a folder inside the runs folder or not: the link is not the run)."""
    if run.path.is_symlink() or ".." in run.path.parts:
        raise UserError(f"{run.path} is a link or a path out of the runs folder: not deleting it")
    if not run.config_path.is_file():
        raise UserError(f"{run.path} has no config.json: not a run folder, not deleting it")
    shutil.rmtree(run.path)


def list_runs(runs_dir: Path) -> list[Run]:
    """Every folder holding a config.json, oldest first (ids sort by start time). A symlink to
    a folder outside `runs_dir` is not listed: a run id never reaches out of the folder."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [
        Run(p)
        for p in sorted(runs_dir.iterdir())
        if (p / "config.json").is_file() and (not p.is_symlink() or _inside(runs_dir, p))
    ]
