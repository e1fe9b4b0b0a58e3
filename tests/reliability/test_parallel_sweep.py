"""`tui-trainer sweep NAME --parallel 2` on the CPU: the members train in child processes, each
once; a Ctrl-C to the parent (the terminal's process group: the children are in sessions of
their own) leaves every started member interrupted and no child alive, and a rerun completes
the sweep; bad options change nothing."""

from __future__ import annotations

import os
import re
import signal
import time

import psutil
import pytest

from tests.support.processes import leftovers, spawn_cli
from tests.support.runs import fake_run, invoke
from tests.support.sweeps import sweep_presets
from tui_trainer.runs.groups import comparable
from tui_trainer.runs.store import list_runs
from tui_trainer.studies import parallel, sweep_file, sweeps

THREE = 'base = "tiny"\n[grid]\nlr = [0.01, 0.02, 0.03]\n'
CHILD_PID = re.compile(r"\(pid (\d+), ")


@pytest.fixture
def presets(tmp_path, monkeypatch):
    return sweep_presets(tmp_path / "presets", monkeypatch, {"tiny-three": THREE})


def sweep_args(tiny_data, runs_dir, *extra) -> list:
    return ["sweep", "tiny-three", "--parallel", "2", "--data", tiny_data, "--runs-dir", runs_dir,
            *extra]  # fmt: skip


def child_pids(output: str) -> set[int]:
    return {int(pid) for pid in CHILD_PID.findall(output)}


def test_two_at_once_complete_every_member_once(presets, tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    proc = spawn_cli(*sweep_args(tiny_data, runs_dir))
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    runs = list_runs(runs_dir)
    assert {r.status() for r in runs} == {"completed"}, output
    assert sorted(r.config()["lr"] for r in runs) == [0.01, 0.02, 0.03]  # each member once
    assert len({comparable(r.config()) for r in runs}) == 3
    cores = len(os.sched_getaffinity(0))
    assert {r.config()["threads"] for r in runs} == {max(1, cores // 2)}  # the cores split
    assert output.count("decoding 38 images at 32px once for 3 member(s)") == 1
    pids = child_pids(output)
    assert len(pids) == 3 and os.getpid() not in pids  # one child per member
    # the final table: every member completed, with its log
    table = [line for line in output.splitlines() if re.match(r"^\d  tiny-lr=", line)]
    assert len(table) == 3 and all(" completed " in line for line in table), output
    logs = runs_dir / ".sweep-logs" / "tiny-three"
    for i, member in enumerate(sweep_file.load_sweep("tiny-three").members, 1):
        text = (logs / f"{member.name}.log").read_text()
        assert f"--member {i} " in text and "status: completed" in text, text
        # the member's run folder holds the same file as console.log
        (run,) = [r for r in runs if r.meta().get("sweep_member") == member.name]
        linked = run.path / "console.log"
        assert linked.samefile(logs / f"{member.name}.log")
        shown = invoke("show", run.id, "--runs-dir", runs_dir)
        assert f"output: {linked}" in shown.output, shown.output
    states = sweeps.member_states(sweep_file.load_sweep("tiny-three"), runs_dir)
    assert all(s.holder is None for s in states)  # every claim let go


def test_beside_another_sweep_on_the_same_folder_each_member_trains_once(
    presets, tiny_data, tmp_path
):
    """The children claim their members themselves: a plain `sweep` started at the same time
    shares the members out with them."""
    runs_dir = tmp_path / "runs"
    procs = [
        spawn_cli(*sweep_args(tiny_data, runs_dir)),
        spawn_cli("sweep", "tiny-three", "--data", tiny_data, "--runs-dir", runs_dir),
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    # 3: it ended while the other still trained a member; the last to end saw them all done
    codes = [p.returncode for p in procs]
    assert set(codes) <= {0, 3} and 0 in codes, outputs
    runs = list_runs(runs_dir)
    assert {r.status() for r in runs} == {"completed"}, outputs
    assert sorted(r.config()["lr"] for r in runs) == [0.01, 0.02, 0.03], outputs
    table = [line for line in outputs[0].splitlines() if re.match(r"^\d  tiny-lr=", line)]
    assert len(table) == 3 and all(" completed " in line for line in table), outputs[0]


def ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for_training(proc, runs_dir, count: int) -> None:
    """Until `count` runs are training (their run folders written, status running)."""
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        running = [r for r in list_runs(runs_dir) if r.status() == "running"]
        if len(running) >= count:
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    raise AssertionError("the children did not start training")


def test_a_member_failed_elsewhere_after_the_parent_started_is_not_retried_by_a_child(
    presets, tiny_data, tmp_path
):
    """One invocation, one `since`: member 3 fails in another process while member 1 trains;
    its child, started later, leaves it failed (it runs with the parent's start)."""
    runs_dir = tmp_path / "runs"
    proc = spawn_cli("sweep", "tiny-three", "--parallel", "1", "--data", tiny_data,
                     "--runs-dir", runs_dir)  # fmt: skip
    try:
        wait_for_training(proc, runs_dir, 1)
        fake_run(runs_dir, "20240101-000000-elsewhere", "tiny", "failed",
                 {"ended_at": time.time()}, lr=0.03)  # fmt: skip
        output = proc.communicate(timeout=600)[0]
    finally:
        proc.kill()
    assert proc.returncode == 1, output  # a member failed
    sweep = sweep_file.load_sweep("tiny-three")
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["completed", "completed", "failed"], output
    assert states[2].run.id == "20240101-000000-elsewhere"  # not trained again
    log = parallel.log_path(runs_dir, "tiny-three", sweep.members[2]).read_text()
    assert "failed in another process during this sweep" in log, log


def test_ctrl_c_interrupts_every_started_member_and_a_rerun_completes(presets, tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    args = sweep_args(tiny_data, runs_dir, "--set", "epochs=8")
    proc = spawn_cli(*args, process_group=0)  # as a shell starts a job: its own group
    try:
        wait_for_training(proc, runs_dir, 2)
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C, to the job's group
        output = proc.communicate(timeout=300)[0]
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    runs = list_runs(runs_dir)
    assert len(runs) == 2 and {r.status() for r in runs} == {"interrupted"}, output
    assert "stopping: " in output  # the plain lines say so
    assert "3/3 tiny-lr=0.03-epochs=8: not started" in output  # no child started after the stop
    for pid in child_pids(output):
        assert ended(pid), f"child {pid} left alive"
    for run in runs:  # each stopped once, cleanly: no hard stop
        assert str(run.summary().get("message")).startswith("stopped"), run.summary()
        assert leftovers(run.path) == []
    logs = (runs_dir / ".sweep-logs" / "tiny-three").glob("*.log")
    assert not any("aborted" in log.read_text() for log in logs)

    rerun = spawn_cli(*args)
    output = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, output
    states = sweeps.member_states(sweep_file.load_sweep("tiny-three", {"epochs": "8"}), runs_dir)
    assert [s.status for s in states] == ["completed"] * 3
    completed = [r for r in list_runs(runs_dir) if r.status() == "completed"]
    assert len({comparable(r.config()) for r in completed}) == len(completed) == 3


def test_children_stop_cleanly_when_the_parent_is_killed(presets, tiny_data, tmp_path):
    """SIGKILL leaves the parent no chance to forward anything: the kernel's parent-death
    signal stops each child as a Ctrl-C would."""
    runs_dir = tmp_path / "runs"
    proc = spawn_cli(*sweep_args(tiny_data, runs_dir, "--set", "epochs=8"), process_group=0)
    try:
        wait_for_training(proc, runs_dir, 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 300
        while any(r.status() == "running" for r in list_runs(runs_dir)):
            assert time.monotonic() < deadline, "a child went on training without its parent"
            time.sleep(0.1)
    finally:
        proc.kill()
    runs = list_runs(runs_dir)
    assert len(runs) == 2 and {r.status() for r in runs} == {"interrupted"}
    for run in runs:  # each child ends (a zombie until whoever adopted it reaps it)
        deadline = time.monotonic() + 60
        while not ended(run.summary()["pid"]):
            assert time.monotonic() < deadline, f"child {run.summary()['pid']} left alive"
            time.sleep(0.1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--parallel 0", "--parallel 0: give at least 1 member at once"),
        ("--parallel -1", "--parallel -1: give at least 1 member at once"),
        ("--gpus 0", "--gpus 0: this machine has no CUDA GPU (torch.cuda.device_count() is 0)"),
        ("--gpus 0,1 --parallel 2", "--gpus 0: this machine has no CUDA GPU"),
        ("--gpus x", "--gpus 'x': give GPU indices separated by commas"),
        ("--parallel 2 --member 1", "--parallel with --member: a --member task trains one"),
        ("--parallel 2 --slurm", "--parallel with --slurm: the array runs tasks side by side"),
    ],
)
def test_bad_parallel_options_say_so_in_one_line_and_write_nothing(
    presets, tiny_data, tmp_path, options, message
):
    import torch

    if torch.cuda.is_available() and "--gpus 0" in options:
        pytest.skip("this machine has a GPU 0")
    runs_dir = tmp_path / "runs"
    result = invoke("sweep", "tiny-three", *options.split(), "--data", tiny_data,
                    "--runs-dir", runs_dir)  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.output
    assert not runs_dir.exists()
