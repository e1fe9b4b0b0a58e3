"""A big runs folder written fast: hundreds of tiny run folders (config.json, summary.json, a few
metrics rows), for tests of how the console copes with many runs, not of what a run holds."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from tui_trainer.config import RunConfig


def write_many_runs(runs_dir: Path, count: int, running: int = 0) -> list[str]:
    """`count` completed scratch runs, ids in start order; the last `running` of them read as
    running, held by this process (alive on this host). Returns the ids."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    base = RunConfig().to_dict()
    ids = []
    for i in range(count):
        run_id = f"20240301-{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}-scratch"
        folder = runs_dir / run_id
        folder.mkdir()
        config = {**base, "seed": i % 3, "lr": round(0.001 * (1 + i // 3), 6), "epochs": 2}
        _write(folder / "config.json", {"config": config, "preset": "scratch"})
        rows = [
            {"kind": "epoch", "epoch": e, "train_loss": 2.0 / e, "train_acc": 0.2 * e,
             "val_loss": 2.1 / e, "val_acc": 0.2 * e, "lr": config["lr"], "seconds": 1.0}
            for e in (1, 2)
        ]  # fmt: skip
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if i >= count - running:
            summary = {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}
        else:
            summary = {"status": "completed", "epochs_done": 2, "max_val_acc": 0.4,
                       "test_acc": 0.39, "seconds": 2.0}  # fmt: skip
        _write(folder / "summary.json", summary)
        ids.append(run_id)
    return ids


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))
