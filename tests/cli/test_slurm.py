"""`sweep NAME --slurm`: the sbatch script is valid bash, its array names the members left, and
running it with `bash` for each listed task (no Slurm needed) completes the sweep; Slurm's
warning before the time limit (USR1 to the batch shell) stops the member cleanly and requeues
the task, whose rerun resumes the member; a TERM to the whole step (scancel, the time limit)
stops it cleanly once, with no requeue."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import subprocess_env
from tests.support.runs import invoke
from tests.support.sweeps import sweep_presets
from tui_trainer.files import write_json_atomic
from tui_trainer.runs.groups import comparable
from tui_trainer.runs.store import list_runs
from tui_trainer.studies import slurm, sweep_file, sweeps

FOUR = 'base = "tiny"\n[grid]\nlr = [0.01, 0.02, 0.03, 0.04]\n'


@pytest.fixture
def presets(tmp_path, monkeypatch):
    return sweep_presets(tmp_path / "presets", monkeypatch, {"tiny-four": FOUR})


def write_script(tiny_data, runs_dir: Path, script: Path, *extra) -> str:
    result = invoke(
        "sweep", "tiny-four", "--slurm", "--data", tiny_data, "--runs-dir", runs_dir,
        "--out", script, *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def array_line(script: Path) -> str:
    (line,) = [ln for ln in script.read_text().splitlines() if ln.startswith("#SBATCH --array=")]
    return line.removeprefix("#SBATCH --array=")


def listed(spec: str) -> list[int]:
    """ "1,3-4%2" -> [1, 3, 4]."""
    tasks = []
    for part in spec.split("%")[0].split(","):
        first, _, last = part.partition("-")
        tasks += range(int(first), int(last or first) + 1)
    return tasks


def completed_run(runs_dir: Path, member: sweep_file.SweepMember, run_id: str) -> None:
    folder = runs_dir / run_id
    folder.mkdir(parents=True)
    write_json_atomic(folder / "config.json", {"config": member.config.to_dict(), "preset": "t"})
    write_json_atomic(folder / "summary.json", {"status": "completed", "test_acc": 0.5})


def test_array_spec_compresses_runs_of_indices():
    assert slurm.array_spec([1, 2, 3, 5]) == "1-3,5"
    assert slurm.array_spec([4, 1, 3], max_running=2) == "1,3-4%2"
    assert slurm.array_spec([7]) == "7"


def test_the_script_is_valid_bash_and_its_array_names_the_members_left(
    presets, tiny_data, tmp_path
):
    runs_dir, script = tmp_path / "runs", tmp_path / "sweep.sbatch"
    said = write_script(tiny_data, runs_dir, script, "--set", "epochs=1", "--time", "01:30:00")
    assert f"submit it with `sbatch {script}`" in said and "--array=1-4" in said
    subprocess.run(["bash", "-n", script], check=True)
    text = script.read_text()
    assert array_line(script) == "1-4"
    for directive in (
        f"--output={runs_dir.resolve()}/slurm-logs/%A_%a.out",
        "--time=01:30:00",
        "--requeue",
        f"--mem={slurm.DEFAULT_MEM}",
    ):
        assert f"#SBATCH {directive}\n" in text
    assert re.search(r"^#SBATCH --signal=B:USR1@\d+$", text, re.M)  # the shell alone
    assert "--partition" not in text  # only what was asked for
    assert (
        f'{sys.executable} -m tui_trainer sweep tiny-four --member "$SLURM_ARRAY_TASK_ID"' in text
    )
    assert f"--data {tiny_data.resolve()} --set epochs=1 &" in text
    assert f"-m tui_trainer --runs-dir {runs_dir.resolve()}" in text  # how to watch it
    assert (runs_dir / "slurm-logs").is_dir()

    sweep = sweep_file.load_sweep("tiny-four", {"epochs": "1"})
    completed_run(runs_dir, sweep.members[1], "20240101-000000-b")
    write_script(tiny_data, runs_dir, script, "--set", "epochs=1", "--max-running", "2")
    assert array_line(script) == "1,3-4%2"
    for member in (sweep.members[0], sweep.members[3]):
        completed_run(runs_dir, member, f"20240101-000000-{member.config.lr}")
    write_script(tiny_data, runs_dir, script, "--set", "epochs=1")
    assert array_line(script) == "3"


def test_the_script_run_with_bash_for_each_listed_task_completes_the_sweep(
    presets, tiny_data, tmp_path
):
    runs_dir, script = tmp_path / "runs", tmp_path / "sweep.sbatch"
    write_script(tiny_data, runs_dir, script, "--set", "epochs=1")
    tasks = listed(array_line(script))
    assert tasks == [1, 2, 3, 4]
    for k in [*tasks, 2]:  # task 2 again: Slurm may run a task twice (a requeue)
        done = subprocess.run(
            ["bash", script], env=subprocess_env(SLURM_ARRAY_TASK_ID=k),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    assert "tiny-lr=0.02: completed (run " in done.stdout
    sweep = sweep_file.load_sweep("tiny-four", {"epochs": "1"})
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["completed"] * 4
    keys = [comparable(r.config()) for r in list_runs(runs_dir)]
    assert len(keys) == len(set(keys)) == 4  # each member once
    assert [s.run.meta()["sweep_member"] for s in states] == [m.name for m in sweep.members]

    result = invoke(
        "sweep", "tiny-four", "--slurm", "--runs-dir", runs_dir, "--data", tiny_data,
        "--set", "epochs=1", "--out", tmp_path / "again.sbatch",
    )  # fmt: skip
    assert result.exit_code == 0 and "nothing left to run, no script written" in result.output
    assert not (tmp_path / "again.sbatch").exists()


def stand_in_scontrol(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment of a Slurm array task (job 77, task 3) whose `scontrol` notes its call."""
    bin_dir, noted = tmp_path / "bin", tmp_path / "requeued"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" > {noted}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = subprocess_env(
        SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_JOB_ID=77, PATH=f"{bin_dir}:{os.environ['PATH']}"
    )
    return env, noted


def start_task_and_wait_for_an_epoch(script: Path, env, runs_dir: Path) -> subprocess.Popen:
    """Task 3 in a session of its own (the batch step's processes), once its first epoch is
    done and well before its last."""
    task = subprocess.Popen(
        ["bash", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not any(r.last_path.exists() for r in list_runs(runs_dir)):
        assert task.poll() is None and time.monotonic() < deadline, task.stdout.read()
        time.sleep(0.05)
    return task


def kill_group(task: subprocess.Popen) -> None:
    """Whatever of the task's session is left, after a failed check."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(task.pid, signal.SIGKILL)


# A member that notes each SIGTERM it gets and ends with exit code `code` (130: interrupted) a
# while after the first (time for a second to arrive). The script runs it as its "python".
COUNTING_MEMBER = """\
#!{python}
import pathlib, signal, sys, time
noted = pathlib.Path({noted!r})
stopped = []
def note(signum, frame):
    with noted.open("a") as f:
        f.write("TERM\\n")
    stopped.append(time.monotonic())
signal.signal(signal.SIGTERM, note)
pathlib.Path({ready!r}).touch()
while not stopped or time.monotonic() < stopped[0] + 1.0:
    time.sleep(0.01)
sys.exit({code})
"""


def counting_task(tmp_path: Path, code: int) -> tuple[subprocess.Popen, Path, Path]:
    """The script of a job whose member counts its SIGTERMs, running as task 3 of job 77 in a
    session of its own (the batch step), once the member is up; its TERMs file and the stand-in
    scontrol's note."""
    python, noted, ready = tmp_path / "member", tmp_path / "terms", tmp_path / "ready"
    python.write_text(COUNTING_MEMBER.format(python=sys.executable, noted=str(noted),
                                             ready=str(ready), code=code))  # fmt: skip
    python.chmod(0o755)
    job = slurm.SlurmJob(sweep="s", members=4, indices=(3,), python=python,
                         runs_dir=tmp_path, data_dir=tmp_path)  # fmt: skip
    script = tmp_path / "s.sbatch"
    script.write_text(slurm.sbatch_script(job))
    env, requeued = stand_in_scontrol(tmp_path)
    task = subprocess.Popen(["bash", script], env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert task.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    return task, noted, requeued


@pytest.mark.parametrize(
    "to_group, signum, member_code, code, requeue",
    [
        (False, signal.SIGUSR1, 130, 0, True),  # the warning: stop it, then requeue the task
        (False, signal.SIGUSR1, 0, 0, False),  # it completed meanwhile: nothing to requeue
        (True, signal.SIGTERM, 130, 130, False),  # scancel / time limit: it has it already
    ],
)
def test_the_member_gets_one_sigterm_and_only_the_warning_requeues(
    tmp_path, to_group, signum, member_code, code, requeue
):
    task, noted, requeued = counting_task(tmp_path, member_code)
    try:
        if to_group:
            os.killpg(task.pid, signum)
        else:
            task.send_signal(signum)
        assert task.wait(timeout=60) == code
    finally:
        kill_group(task)
    assert noted.read_text().splitlines() == ["TERM"]  # one: a second would be a hard stop
    assert requeued.exists() == requeue


def test_the_warning_before_the_time_limit_stops_cleanly_requeues_and_the_rerun_resumes(
    presets, tiny_data, tmp_path
):
    runs_dir, script = tmp_path / "runs", tmp_path / "sweep.sbatch"
    write_script(tiny_data, runs_dir, script, "--set", "epochs=5")
    env, requeued = stand_in_scontrol(tmp_path)
    task = start_task_and_wait_for_an_epoch(script, env, runs_dir)
    try:
        task.send_signal(signal.SIGUSR1)  # --signal=B:USR1@N: the batch shell alone
        output = task.communicate(timeout=300)[0]
    finally:
        kill_group(task)
    assert task.returncode == 0, output  # requeued: the task ends without failing
    assert requeued.read_text().split() == ["requeue", "77_3"]
    (run,) = list_runs(runs_dir)
    assert run.status() == "interrupted" and run.last_path.exists(), output
    assert "aborted" not in output  # one signal reached the member: a clean stop

    rerun = subprocess.run(
        ["bash", script], env=subprocess_env(SLURM_ARRAY_TASK_ID=3),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"(resuming run {run.id})" in rerun.stdout
    assert list_runs(runs_dir) == [run] and run.status() == "completed"
    assert run.config()["lr"] == 0.03


def test_a_term_to_the_whole_step_stops_the_member_cleanly_and_does_not_requeue(
    presets, tiny_data, tmp_path
):
    """scancel and the time limit send SIGTERM to every process of the batch step: the member
    gets it straight from Slurm, the shell must not send it a second one (its hard stop), nor
    put a cancelled task back in the queue (a preempted one Slurm requeues itself)."""
    runs_dir, script = tmp_path / "runs", tmp_path / "sweep.sbatch"
    write_script(tiny_data, runs_dir, script, "--set", "epochs=5")
    env, requeued = stand_in_scontrol(tmp_path)
    task = start_task_and_wait_for_an_epoch(script, env, runs_dir)
    try:
        os.killpg(task.pid, signal.SIGTERM)  # the shell and the member at once
        output = task.communicate(timeout=300)[0]
    finally:
        kill_group(task)
    (run,) = list_runs(runs_dir)
    assert run.status() == "interrupted" and run.last_path.exists(), output
    assert str(run.summary().get("message")).startswith("stopped"), run.summary()
    assert "aborted" not in output
    assert task.returncode == 130, output  # the member's own code: interrupted
    assert not requeued.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--slurm", "--time", "4h"], "--time '4h': give HH:MM:SS"),
        (["--slurm", "--time", "04:60:00"], "--time '04:60:00': give HH:MM:SS"),
        (["--slurm", "--max-running", "0"], "--max-running 0: give at least 1"),
        (["--slurm", "--gpus-per-task", "0"], "--gpus-per-task 0: give at least 1"),
        (["--slurm", "--cpus-per-task", "-1"], "--cpus-per-task -1: give at least 1"),
        (["--slurm", "--mem", "lots"], "--mem 'lots': give a size like 8G"),
        (["--slurm", "--member", "1"], "--slurm writes a script, --member runs"),
        (["--slurm", "--dry-run"], "--slurm writes a script, --dry-run"),
        (["--slurm", "--out", "{tmp}/no/dir/s.sbatch"], "does not exist"),
        (["--slurm", "--out", "{tmp}"], "is a folder: give a file name"),
        (["--partition", "gpu"], "--partition is an option of --slurm: add --slurm"),
        (["--max-running", "2"], "--max-running is an option of --slurm"),
    ],
)
def test_bad_slurm_options_are_one_line_exit_2_and_write_nothing(args, message, tmp_path):
    runs_dir = tmp_path / "runs"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = invoke("sweep", "scratch-lr-sweep", "--runs-dir", runs_dir, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not runs_dir.exists() and not list(tmp_path.rglob("*.sbatch"))
