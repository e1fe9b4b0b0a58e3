"""`kill -9` at many points of a run: every folder it leaves still lists, shows, reads as
`crashed`, and resumes to exactly the end an uninterrupted run reaches.

One driver process (kill_driver.py) imports torch once and forks a CLI run per kill; see there for
how each point is hit. The runs: ResNet18 at 32 px, 2 epochs of 2 steps, on the tiny set.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support.paths import REPO
from tests.support.processes import leftovers, small_set_options, stable, subprocess_env
from tests.support.runs import invoke
from tui_trainer.files import read_jsonl
from tui_trainer.runs.store import Run

# job -> the kill point of each stage: the first starts the run, the others resume it.
JOBS = {
    "folder-made": ["folder-made"],
    "folder-created": ["folder-created"],
    "step-row-half-written": ["step-row-half-written", "resumed-step"],
    "summary-heartbeat-rename": ["summary-heartbeat-rename"],
    "best.pt-half-written": ["best.pt-half-written"],
    "last.pt-half-written": ["last.pt-half-written"],
    "last.pt-rename": ["last.pt-rename", "rewind-metrics-rename"],
    "last.pt-write": ["last.pt-write"],
    "epoch-row": ["epoch-row"],
    "test-evaluation": ["test-evaluation"],
    "final-summary-rename": ["final-summary-rename"],
    "external": ["external"],
    "last.pt-removal": ["last.pt-removal"],
    "reference": [None],
}
COMPLETED_JOBS = ("last.pt-removal", "reference")  # the run's summary says completed
# What each job's last kill left in the folder: last.pt@E holds epoch E; metrics.jsonl lists
# its step numbers and epoch rows ("|" = a line cut short); .NAME.tmp is an unrenamed temp file.
# An epoch's row comes before its checkpoints (train/checkpoint_writer.py): E1 without last.pt@1
# in "summary-heartbeat-rename", E2 without last.pt@2 in the best.pt and last.pt jobs.
LEFT_BEHIND = {
    "folder-made": "summary.json",
    "folder-created": "config.json summary.json",
    "step-row-half-written": "config.json summary.json metrics.jsonl[1 2 E1 3] last.pt@1 best.pt",
    "summary-heartbeat-rename": "config.json summary.json metrics.jsonl[1 2 E1] .summary.json.tmp",
    "best.pt-half-written": (
        "config.json summary.json metrics.jsonl[1 2 E1 3 4 E2] last.pt@1 .best.pt.tmp"
    ),
    "last.pt-half-written": (
        "config.json summary.json metrics.jsonl[1 2 E1 3 4 E2] last.pt@1 best.pt .last.pt.tmp"
    ),
    "last.pt-rename": (
        "config.json summary.json metrics.jsonl[1 2 E1 3 4 E2] last.pt@1 best.pt .metrics.jsonl.tmp"
    ),
    "last.pt-write": "config.json summary.json metrics.jsonl[1 2 E1 3 4 E2] last.pt@1 best.pt",
    "epoch-row": "config.json summary.json metrics.jsonl[1 2 E1 3 4] last.pt@1 best.pt",
    "test-evaluation": "config.json summary.json metrics.jsonl[1 2 E1 3 4 E2] last.pt@2 best.pt",
    "final-summary-rename": (
        "config.json summary.json metrics.jsonl[1 2 E1 3 4 E2] last.pt@2 best.pt .summary.json.tmp"
    ),
    "external": "config.json summary.json metrics.jsonl[1 2 E1 3*] last.pt@1 best.pt",
    # completed: the summary was written, last.pt not yet removed; a completed run's folder
    "last.pt-removal": "config.json summary.json metrics.jsonl[1 2 E1 3 4 E2] last.pt@2 best.pt",
    "reference": "config.json summary.json metrics.jsonl[1 2 E1 3 4 E2] best.pt",
}


@pytest.fixture(scope="module")
def killed(tiny_data, tmp_path_factory):
    """Run every job once: (the driver's report, the folder holding one runs dir per job).

    The folders hold about 1 GB of checkpoints, removed when the module is done."""
    root = tmp_path_factory.mktemp("killed")
    jobs = {
        name: {
            "runs_dir": str(root / name),
            "stages": [
                {"mode": "resume" if i else "start", "kill": point}
                for i, point in enumerate(points)
            ],
        }
        for name, points in JOBS.items()
    }
    (root / "jobs.json").write_text(json.dumps(jobs))
    env = subprocess_env(TUI_TRAINER_CACHE=root / "cache", TORCH_HOME=root / "torch-home")
    done = subprocess.run(
        [sys.executable, REPO / "tests/reliability/kill_driver.py", root / "jobs.json"]
        + [root / "report.json", "--", "--data", tiny_data, *small_set_options(epochs=2)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield json.loads((root / "report.json").read_text()), root
    shutil.rmtree(root, ignore_errors=True)


def left_behind(folder: Path) -> str:
    """The folder in LEFT_BEHIND's notation."""
    names = {p.name for p in folder.iterdir()}
    parts = [n for n in ("config.json", "summary.json") if n in names]
    if "metrics.jsonl" in names:
        cut = "" if (folder / "metrics.jsonl").read_text().endswith("\n") else "|"
        rows = [
            str(r["global_step"]) if r["kind"] == "step" else f"E{r['epoch']}"
            for r in read_jsonl(folder / "metrics.jsonl")
        ]
        parts.append(f"metrics.jsonl[{' '.join(rows)}{cut}]")
    if "last.pt" in names:
        parts.append(f"last.pt@{torch.load(folder / 'last.pt', weights_only=False)['epoch']}")
    parts += [n for n in ("best.pt",) if n in names]
    parts += sorted(re.sub(r"\.[^.]+\.tmp$", ".tmp", n) for n in names if n.endswith(".tmp"))
    return " ".join(parts)


@pytest.mark.parametrize("job", [job for job in JOBS if job not in COMPLETED_JOBS])
def test_a_killed_run_lists_shows_and_resumes_to_the_uninterrupted_end(job, killed):
    report, root = killed
    assert [stage["killed"] for stage in report[job]] == [True] * len(JOBS[job]), report[job]
    runs_dir = root / job
    (folder,) = runs_dir.iterdir()
    found = left_behind(folder)
    if job == "external":  # killed from outside, at some moment after epoch 2's first step
        assert found.startswith(LEFT_BEHIND[job].split("*")[0]), found
    else:
        assert found == LEFT_BEHIND[job]

    listed = invoke("runs", "--runs-dir", runs_dir, "--json")
    assert listed.exit_code == 0, listed.output
    assert invoke("runs", "--runs-dir", runs_dir).exit_code == 0
    assert Run(folder).status() == "crashed"
    if job == "folder-made":  # no config.json: not a run yet, nothing to show or resume
        assert json.loads(listed.output) == []
        shown = invoke("show", folder.name, "--runs-dir", runs_dir)
        assert shown.exit_code == 2 and shown.output.startswith(f"error: no run '{folder.name}'")
        return
    assert [row["status"] for row in json.loads(listed.output)] == ["crashed"]
    shown = invoke("show", folder.name, "--runs-dir", runs_dir)
    assert shown.exit_code == 0 and "status=crashed" in shown.output, shown.output

    resumed = invoke("run", "--resume", folder.name, "--runs-dir", runs_dir)
    assert resumed.exit_code == 0, resumed.output
    run = Run(folder)
    assert run.status() == "completed" and leftovers(folder) == []
    (reference,) = (Run(p) for p in (root / "reference").iterdir())
    assert stable(run.metrics()) == stable(reference.metrics())
    summary = run.summary()
    assert summary.pop("resumes") >= 1  # a resume killed before its summary write doesn't count
    assert stable([summary]) == stable([reference.summary()])


@pytest.mark.parametrize("job", COMPLETED_JOBS)
def test_a_completed_run_keeps_best_pt_and_a_kill_before_last_pt_goes_leaves_it_completed(
    job, killed
):
    """last.pt goes only after the summary says completed: killed in between, the folder is a
    completed run's (with a last.pt that nothing reads); resuming it is refused, as for any
    completed run."""
    report, root = killed
    assert [stage["killed"] for stage in report[job]] == [job != "reference"], report[job]
    runs_dir = root / job
    (folder,) = runs_dir.iterdir()
    assert left_behind(folder) == LEFT_BEHIND[job]
    assert Run(folder).status() == "completed"
    (reference,) = (Run(p) for p in (root / "reference").iterdir())
    assert stable(Run(folder).metrics()) == stable(reference.metrics())
    shown = invoke("show", folder.name, "--runs-dir", runs_dir)
    assert shown.exit_code == 0 and "status=completed" in shown.output, shown.output
    refused = invoke("run", "--resume", folder.name, "--runs-dir", runs_dir)
    assert refused.exit_code == 2 and "is completed" in refused.output, refused.output
