"""Kill `tui-trainer run` with SIGKILL at named points, deterministically. Test tooling only.

    python tests/reliability/kill_driver.py JOBS.json REPORT.json -- <`tui-trainer run` options>

JOBS.json maps a job name to {"runs_dir": DIR, "stages": [STAGE, ...]}. A stage forks a child
that runs the CLI in that runs folder: "start" runs `run scratch <options>`, "resume" runs
`run --resume <the folder's only run>`. Each stage names a kill point (`KILL_POINTS`, or
"external": the parent sends the SIGKILL once a step of epoch 2 is on disk, or null: no kill).
A child that reaches its point sends itself SIGKILL there, so the kill lands at the same line
every time. The parent imports torch once and forks per stage, which keeps a dozen kills cheap.

Checkpoints are written by a background thread while the training thread goes on, so a kill also
fixes how far the other thread got (`settle`): a kill in the training thread comes once the
write it handed over has landed; a kill in the writer thread comes once the training thread
waits for that write (it can go no further). "external" kills land anywhere, races included.

The report maps each job to its stages' outcomes: how the child ended and the folder's files.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import sklearn.model_selection  # noqa: F401 - imported lazily by a run: once here, not per child
import torch

from tui_trainer.cli import app as cli
from tui_trainer.data import augment  # noqa: F401 - same
from tui_trainer.runs import launch
from tui_trainer.runs import store as runs  # Run, list_runs, write_json_atomic as store uses them
from tui_trainer.train import engine
from tui_trainer.train.checkpoint_writer import THREAD_NAME, CheckpointWriter, Snapshot


class Writers:
    """The child's checkpoint writer, and whether the training thread is waiting on it."""

    current: CheckpointWriter | None = None
    waited_on = threading.Event()
    real_wait = CheckpointWriter.wait


def watch_writers() -> None:
    real_init = CheckpointWriter.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        Writers.current = self

    def wait(self):
        Writers.waited_on.set()  # only the training thread waits on the writer
        try:
            return Writers.real_wait(self)
        finally:
            Writers.waited_on.clear()

    CheckpointWriter.__init__ = init
    CheckpointWriter.wait = wait


def settle() -> None:
    """Let the other thread go as far as it can before this one dies (see the module's doc)."""
    writer = Writers.current
    if writer is None:
        return
    if threading.current_thread().name == THREAD_NAME:
        Writers.waited_on.wait(timeout=120)
    else:
        Writers.real_wait(writer)


def die() -> None:
    settle()
    os.kill(os.getpid(), signal.SIGKILL)


def before(owner, attr: str, hit) -> None:
    """Wrap `owner.attr` so the process dies just before the call for which `hit(...)` is true."""
    real = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        if hit(*args, **kwargs):
            die()
        return real(*args, **kwargs)

    setattr(owner, attr, wrapper)


def nth_call(n: int):
    calls = {"n": 0}

    def hit(*args, **kwargs) -> bool:
        calls["n"] += 1
        return calls["n"] == n

    return hit


def after_create_run() -> None:
    real = launch.create_run

    def wrapper(*args, **kwargs):
        real(*args, **kwargs)
        die()

    launch.create_run = wrapper


def half_written_checkpoint(name: str, epoch: int) -> None:
    """torch.save of `name`'s temp file at `epoch` writes half the bytes, then the process dies."""
    real = torch.save

    def wrapper(obj, f, *args, **kwargs):
        real(obj, f, *args, **kwargs)
        f = getattr(f, "name", f)  # the checkpoint's temp file, written through a file object
        if Path(f).name.startswith(f".{name}.") and obj.get("epoch") == epoch:
            os.truncate(f, os.path.getsize(f) // 2)
            die()

    torch.save = wrapper


def half_written_step_row(global_step: int) -> None:
    real = runs.Run.append_metric

    def wrapper(self, row, sync=False):
        if row.get("kind") == "step" and row.get("global_step") == global_step:
            with self.metrics_path.open("a") as fh:
                line = json.dumps(row)
                fh.write(line[: len(line) // 2])
            die()
        return real(self, row, sync)

    runs.Run.append_metric = wrapper


def renaming_summary(**fields) -> None:
    """Die just before a summary.json temp holding `fields` is renamed into place."""

    def hit(src, dst):
        if Path(dst).name != "summary.json":
            return False
        data = json.loads(Path(src).read_text())
        return all(data.get(k) == v for k, v in fields.items())

    before(os, "replace", hit)


def renaming(name: str, n: int = 1) -> None:
    """Die just before the `n`th rename of a temp file onto `name`."""
    count = nth_call(n)
    before(os, "replace", lambda src, dst: Path(dst).name == name and count())


# Each point: what the child is about to do when it dies (2 epochs of 2 steps each).
KILL_POINTS = {
    "folder-made": lambda: before(
        runs, "write_json_atomic", lambda path, data: path.name == "config.json"
    ),
    "folder-created": after_create_run,
    "step-row-half-written": lambda: half_written_step_row(3),
    "summary-heartbeat-rename": lambda: renaming_summary(epochs_done=1),
    "best.pt-half-written": lambda: half_written_checkpoint("best.pt", 1),
    "last.pt-half-written": lambda: half_written_checkpoint("last.pt", 2),
    "last.pt-rename": lambda: renaming("last.pt", 2),
    "last.pt-write": lambda: before(Snapshot, "write", lambda self, run_dir: self.epoch == 2),
    "epoch-row": lambda: before(
        runs.Run,
        "append_metric",
        lambda self, row, sync=False: row.get("kind") == "epoch" and row["epoch"] == 2,
    ),
    "test-evaluation": lambda: before(engine, "evaluate_with_predictions", nth_call(1)),
    "final-summary-rename": lambda: renaming_summary(status="completed"),
    "last.pt-removal": lambda: before(launch, "remove_last", lambda run_dir: True),
    # only in a resume: rewriting metrics.jsonl, and the resumed run's second step
    "rewind-metrics-rename": lambda: renaming("metrics.jsonl"),
    "resumed-step": lambda: before(
        engine, "_check_divergence", lambda loss, state, cfg: state.global_step == 4
    ),
}


def folder_listing(runs_dir: Path) -> dict[str, list[str]]:
    return {
        d.name: sorted(p.name for p in d.iterdir())
        for d in sorted(runs_dir.iterdir())
        if d.is_dir()
    }


def wait_for_step_of_epoch_2(runs_dir: Path, pid: int) -> None:
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        for metrics in runs_dir.glob("*/metrics.jsonl"):
            if any(r.get("epoch") == 2 for r in runs.read_jsonl(metrics)):
                os.kill(pid, signal.SIGKILL)
                return
        time.sleep(0.01)


def run_stage(runs_dir: Path, stage: dict, cli_args: list[str]) -> dict:
    if stage["mode"] == "start":
        args = ["run", "scratch", *cli_args]
    else:
        (run,) = runs.list_runs(runs_dir)
        args = ["run", "--resume", run.id]
    args += ["--runs-dir", str(runs_dir)]
    point = stage.get("kill")
    pid = os.fork()
    if pid == 0:  # the child: arm the kill point and run the CLI
        try:
            watch_writers()
            if point in KILL_POINTS:
                KILL_POINTS[point]()
            cli.app(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - report, never return into the parent's loop
            code = 99
        sys.stdout.flush()
        os._exit(code)
    if point == "external":
        wait_for_step_of_epoch_2(runs_dir, pid)
    _, status = os.waitpid(pid, 0)
    signalled = os.WIFSIGNALED(status)
    return {
        "kill": point,
        "killed": signalled and os.WTERMSIG(status) == signal.SIGKILL,
        "exit_code": None if signalled else os.WEXITSTATUS(status),
        "left": folder_listing(runs_dir),
    }


def main() -> None:
    jobs_file, report_file, sep, *cli_args = sys.argv[1:]
    assert sep == "--", __doc__
    jobs = json.loads(Path(jobs_file).read_text())
    report = {}
    for name, job in jobs.items():
        runs_dir = Path(job["runs_dir"])
        runs_dir.mkdir(parents=True, exist_ok=True)
        report[name] = [run_stage(runs_dir, stage, cli_args) for stage in job["stages"]]
        print(name, json.dumps(report[name]), flush=True)
    Path(report_file).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
