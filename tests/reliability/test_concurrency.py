"""Runs started at the same moment from separate processes get their own folders. (The readers
never failing while a run writes is checked in test_signals.py, during its runs.)"""

from __future__ import annotations

import subprocess
import sys
import time

from tests.support.paths import REPO
from tests.support.processes import leftovers, subprocess_env
from tui_trainer.runs.store import list_runs

# Each process sleeps until the same instant, then makes 15 runs of the same name as fast as it
# can: both race for the same ids within one second and must settle on different folders.
CREATE_RUNS = """
import os, sys, time
from tui_trainer.runs.store import create_run
start, runs_dir = float(sys.argv[1]), sys.argv[2]
time.sleep(max(0.0, start - time.time()))
for i in range(15):
    create_run(runs_dir, {"config": {}, "maker": [os.getpid(), i]}, "scratch", name="same")
"""


def test_two_processes_creating_runs_at_once_get_distinct_folders(tmp_path):
    runs_dir = tmp_path / "runs"
    start = time.time() + 2.0  # both are past their imports by then
    makers = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE_RUNS, str(start), str(runs_dir)],
            env=subprocess_env(),
            cwd=REPO,
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in makers] == [0, 0]
    runs = list_runs(runs_dir)
    assert len(runs) == 30 and len({r.id for r in runs}) == 30
    made = sorted(tuple(r.meta()["maker"]) for r in runs)  # each folder holds one maker's config
    pids = sorted({pid for pid, _ in made})
    assert len(pids) == 2 and made == sorted((pid, i) for pid in pids for i in range(15))
    assert any(r.id.endswith("-same-2") for r in runs)  # same-second ids were retried
    assert all(leftovers(r.path) == [] for r in runs)
