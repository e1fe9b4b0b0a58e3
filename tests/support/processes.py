"""The CLI in a subprocess (reliability and CLI tests): the smallest real run as a config and
as `--set` options, the environment a child needs, and checks on what it leaves behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO
from tests.support.runs import tiny_config

# ResNet18 at 32 px: small checkpoints (~90 MB) and quick steps. One thread: on a busy machine
# two OpenMP threads per process spin against each other and run ~10x slower.
SMALL = {
    "model": "resnet18",
    "image_size": 32,
    "resize": 36,
    "batch_size": 8,
    "lr": 0.01,
    "threads": 1,
    "precision": "fp32",
    "device": "cpu",
    "last_batch": "keep",  # as small_config: `run scratch` would drop (the scratch preset's)
}


def small_config(**overrides):
    return tiny_config(**{**SMALL, **overrides})


def small_set_options(**overrides) -> list[str]:
    """The same config as `--set key=value` options for `tui-trainer run scratch`."""
    return [arg for k, v in {**SMALL, **overrides}.items() for arg in ("--set", f"{k}={v}")]


def subprocess_env(**extra) -> dict[str, str]:
    """The test's environment (isolated caches and runs) with this checkout importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return env | {key: str(value) for key, value in extra.items()}


def spawn_cli(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tui_trainer", *map(str, args)],
        env=subprocess_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def leftovers(path: Path) -> list[str]:
    """Temp files of atomic writes in a folder."""
    return sorted(p.name for p in path.iterdir() if p.name.endswith(".tmp"))


# Wall-clock and process facts (the summary's "system": the sampler's CPU and memory peaks);
# everything else in a run's rows must match to the last bit.
VOLATILE = {
    "seconds",
    "pid",
    "host",
    "started_at",
    "ended_at",
    "heartbeat",
    "resumed_at",
    "system",
}


def stable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]
