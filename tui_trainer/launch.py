"""Start a run end to end: the one function the CLI and the TUI both call.

config -> prepare (all bad input fails here, before anything is written) -> run folder ->
engine.train with the run writer subscribed -> summary.json
"""

from __future__ import annotations

import platform
import subprocess
import threading
from pathlib import Path
from typing import Any

import torch
import torchvision

from . import engine
from .config import RunConfig
from .events import EventCallback, RunEnded, fan_out
from .runs import Run, RunWriter, create_run, ensure_writable


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


def run_metadata(prep: engine.Prepared, preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        "config": prep.config.to_dict(),
        "preset": preset,
        "overrides": {k: str(v) for k, v in overrides.items()},
        "data_dir": str(prep.data_dir.resolve()),
        "split_source": prep.splits.split_source,
        "classes": prep.splits.classes,
        "device": str(prep.device),
        "precision": prep.precision,
        "fast_paths": prep.fast_paths,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "git_revision": _git_revision(),
    }


def start_run(
    config: RunConfig,
    *,
    preset: str,
    overrides: dict[str, Any],
    data_dir: Path,
    runs_dir: Path,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    name: str | None = None,
) -> tuple[Run, RunEnded]:
    """Prepare, create the run folder, train. Raises UserError before creating anything."""
    stop = stop or threading.Event()
    ensure_writable(runs_dir)
    prep = engine.prepare(config, data_dir, on_event)
    run = create_run(runs_dir, run_metadata(prep, preset, overrides), preset, name)
    return run, _train_into(run, prep, on_event, stop, resume=None)


def _train_into(run, prep, on_event, stop, resume) -> RunEnded:
    writer = RunWriter(run)
    listen = fan_out(writer, on_event)
    try:
        return engine.train(prep, listen, stop, run.path, run.id, resume=resume)
    except Exception as exc:  # noqa: BLE001 - a run that breaks is recorded as failed, not lost
        ended = RunEnded(run.id, "failed", {}, f"{type(exc).__name__}: {exc}")
        listen(ended)
        return ended
