"""`sweep --parallel`: the children's slots (GPUs, or the CPU's cores split), the command and
environment each child gets, the decode cache filled once, and the pool keeping N children busy
over real (trivial) processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tui_trainer.data.decode import decode_all
from tui_trainer.errors import UserError
from tui_trainer.studies import decode_cache, parallel, sweep_file
from tui_trainer.studies.parallel import ChildOptions, ChildState
from tui_trainer.studies.slots import Slot, parse_gpus, plan_slots

TINY_PRESET = 'model = "resnet18"\nimage_size = 32\nresize = 36\nepochs = 1\nlr = 0.01\n'
SWEEP = 'base = "tiny"\n[grid]\nlr = [0.1, 0.2, 0.3]\nresize = [36, 40]\n'


@pytest.fixture
def sweep(tmp_path, monkeypatch) -> sweep_file.Sweep:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_PRESET)
    (folder / "tiny-six.toml").write_text(SWEEP)
    monkeypatch.setenv("TUI_TRAINER_PRESETS", str(folder))
    return sweep_file.load_sweep("tiny-six")


def test_on_the_cpu_the_cores_are_split_between_the_children():
    slots = plan_slots(3, None, device_count=0, cores=16)
    assert [(s.index, s.gpu, s.threads) for s in slots] == [
        (0, None, 5),
        (1, None, 5),
        (2, None, 5),
    ]
    assert slots[0].describe() == "cpu, 5 threads"
    # more children than cores: one thread each, never zero
    assert {s.threads for s in plan_slots(4, None, device_count=0, cores=2)} == {1}
    assert plan_slots(2, None, device_count=0, cores=2)[1].describe() == "cpu, 1 thread"


def test_a_users_threads_setting_wins_over_the_split():
    slots = plan_slots(2, None, device_count=0, cores=16, user_threads=True)
    assert [s.threads for s in slots] == [None, None]
    assert slots[0].describe() == "cpu"


def test_gpus_give_one_slot_each_and_n_defaults_to_their_number():
    slots = plan_slots(None, [0, 1], device_count=2, cores=16)
    assert [(s.gpu, s.threads) for s in slots] == [("0", 8), ("1", 8)]
    assert slots[1].describe() == "GPU 1, 8 threads"
    # more children than GPUs: they take turns on them
    turns = plan_slots(4, [1, 0], device_count=2, cores=16)
    assert [s.gpu for s in turns] == ["1", "0", "1", "0"]


def test_gpu_indices_follow_the_parents_visible_devices():
    slots = plan_slots(None, [0, 1], device_count=2, cores=4, visible="3,5")
    assert [s.gpu for s in slots] == ["3", "5"]


def test_without_gpus_a_cuda_machine_uses_every_gpu_unless_the_device_is_cpu():
    assert [s.gpu for s in plan_slots(None, None, device_count=2, cores=4)] == ["0", "1"]
    on_cpu = plan_slots(2, None, device_count=2, cores=4, device="cpu")
    assert [s.gpu for s in on_cpu] == [None, None]
    assert [s.gpu for s in plan_slots(None, None, device_count=0, cores=4)] == [None]


@pytest.mark.parametrize(
    ("parallel_", "gpus", "count", "device", "message"),
    [
        (0, None, 0, None, "--parallel 0: give at least 1"),
        (-2, None, 0, None, "--parallel -2: give at least 1"),
        (None, [0], 0, None, "--gpus 0: this machine has no CUDA GPU (torch.cuda.device_count"),
        (2, [0, 2], 2, None, "--gpus 2: there is no such GPU, this machine has 2 (0 to 1)"),
        (None, [0], 1, "cpu", "--gpus with --device cpu: drop one of the two"),
    ],
)
def test_bad_slot_options_are_refused(parallel_, gpus, count, device, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_slots(parallel_, gpus, device_count=count, cores=4, device=device)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "give GPU indices"),
        ("", "give GPU indices"),
        ("0,-1", "give GPU indices"),
        ("0,0", "a GPU is named twice"),
    ],
)
def test_bad_gpu_lists_are_refused(text, message):
    assert parse_gpus("0, 2") == [0, 2]
    with pytest.raises(UserError, match=message):
        parse_gpus(text)


def test_each_child_runs_its_member_with_the_parents_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = ChildOptions(
        Path("data"), Path("runs"), ("classes=3", "epochs=1"), 3, "cpu", since=1700000000.123456
    )
    command = parallel.child_command("scratch-lr-sweep", 2, options, Slot(1, None, 4))
    assert command[:7] == [
        sys.executable,
        "-m",
        "tui_trainer",
        "sweep",
        "scratch-lr-sweep",
        "--member",
        "2",
    ]
    assert command[7:] == [
        "--data", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
        "--set", "classes=3", "--set", "epochs=1", "--set", "threads=4",
        "--seeds", "3", "--device", "cpu", "--since", "1700000000.123456",
    ]  # fmt: skip
    assert float(command[-1]) == options.since  # the parent's start, to the last bit
    bare = parallel.child_command("s", 1, ChildOptions(tmp_path, tmp_path), Slot(0, "0", None))
    assert not {"--set", "--seeds", "--device", "--since"} & set(bare)


def test_a_childs_environment_names_its_gpu_and_its_parent():
    base = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1"}
    on_gpu = parallel.child_env(Slot(1, "1", 8), base)
    assert on_gpu["CUDA_VISIBLE_DEVICES"] == "1" and on_gpu["PATH"] == "/bin"
    assert on_gpu[parallel.PARENT_ENV] == str(os.getpid())
    assert parallel.child_env(Slot(0, None, 2), base)["CUDA_VISIBLE_DEVICES"] == "0,1"
    # its own log, not a detached parent's: the one the child links into its run folder
    detached_parent = {**base, parallel.LOG_ENV: "/runs/.detached/parent.log"}
    own = parallel.child_env(Slot(0, None, 2), detached_parent, log=Path("/runs/m.log"))
    assert own[parallel.LOG_ENV] == "/runs/m.log"


def test_one_decode_per_image_list_and_size_then_the_children_find_it_cached(
    sweep, tiny_data, monkeypatch
):
    jobs = decode_cache.decode_jobs(sweep.members, tiny_data)
    assert sorted((j.resize, j.size, len(j.members)) for j in jobs) == [(36, 32, 3), (40, 32, 3)]
    seen = []
    decode_cache.fill_decode_cache(jobs, lambda job, done: seen.append((job.resize, done)))
    assert sorted(seen) == [(36, False), (36, True), (40, False), (40, True)]
    for job in jobs:
        assert decode_all(list(job.paths), job.resize, job.size).from_cache


def test_a_stop_during_the_decode_caches_nothing(sweep, tiny_data):
    from tests.support.runs import cache_entries
    from tui_trainer.errors import Stopped

    stop = threading.Event()
    stop.set()
    jobs = decode_cache.decode_jobs(sweep.members, tiny_data)
    with pytest.raises(Stopped):
        decode_cache.fill_decode_cache(jobs, stop=stop)
    assert cache_entries() == []


def test_the_pool_keeps_n_children_busy_in_order_and_starts_each_once(sweep, tmp_path):
    """Children stand in for members (a short sleep each): at most two alive at once, every
    member started once in order, each slot handed on when its child ends."""
    started, alive = [], []

    def spawn(command, env, log):
        alive[:] = [p for p in alive if p.poll() is None]
        assert len(alive) < 2
        member = int(command[command.index("--member") + 1])
        assert "threads=1" in command  # two cores, two children
        started.append(member)
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
        alive.append(proc)
        return proc

    options = ChildOptions(tmp_path, tmp_path / "runs")
    slots = plan_slots(2, None, device_count=0, cores=2)
    todo = sweep.members[1:]  # member 1 done elsewhere, say
    snapshots = []
    pool = parallel.SweepPool(sweep, todo, slots, options, spawn=spawn)
    stopped = pool.run(snapshots.append, threading.Event(), threading.Event())
    assert not stopped
    assert started == [2, 3, 4, 5, 6]
    last = snapshots[-1]
    assert last.done and last.running == 0
    assert last.members[0].child is None  # not this pool's
    assert [m.child for m in last.members[1:]] == [ChildState.ENDED] * 5
    assert {m.exit_code for m in last.members[1:]} == {0}
    assert {m.slot.index for m in last.members[1:]} == {0, 1}
    assert last.members[1].log == tmp_path / "runs" / ".sweep-logs" / "tiny-six" / (
        sweep.members[1].name + ".log"
    )


def test_a_stop_starts_no_new_child_and_signals_the_live_ones_once(sweep, tmp_path):
    """Each stand-in child counts the SIGINTs it gets and exits 130 on the first: one each."""
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: (print('sigint', flush=True), sys.exit(130)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    procs, stop = [], threading.Event()

    def spawn(command, env, log):
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = log.open("w")
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=handle)
        procs.append((proc, log))
        return proc

    def watch(snapshot):
        ready = [log for _, log in procs if "ready" in log.read_text()]
        if len(ready) == 2:
            stop.set()

    options = ChildOptions(tmp_path, tmp_path / "runs")
    pool = parallel.SweepPool(sweep, sweep.members, plan_slots(2, None, device_count=0, cores=2),
                             options, spawn=spawn)  # fmt: skip
    assert pool.run(watch, stop, threading.Event())
    assert len(procs) == 2  # nothing started after the stop
    assert [p.returncode for p, _ in procs] == [130, 130]
    assert [log.read_text().count("sigint") for _, log in procs] == [1, 1]
    last = pool.snapshot(done=True)
    assert [m.child for m in last.members[2:]] == [ChildState.NOT_STARTED] * 4


def test_a_second_stop_is_the_childrens_hard_stop_then_sigkill(sweep, tmp_path, monkeypatch):
    """Stand-in children that count SIGINTs and never exit on them: the stop sends one, the
    abort a second, and SIGKILL follows once the grace (shortened here) has passed."""
    monkeypatch.setattr(parallel, "KILL_AFTER", 0.5)
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, lambda *a: print('sigint', flush=True))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    procs, stop, abort = [], threading.Event(), threading.Event()

    def spawn(command, env, log):
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = log.open("w")
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=handle, start_new_session=True
        )
        procs.append((proc, log))
        return proc

    def watch(snapshot):
        texts = [log.read_text() for _, log in procs]
        if len(texts) == 2 and all("ready" in t for t in texts):
            stop.set()
        if stop.is_set() and all("sigint" in t for t in texts):
            abort.set()

    options = ChildOptions(tmp_path, tmp_path / "runs")
    slots = plan_slots(2, None, device_count=0, cores=2)
    pool = parallel.SweepPool(sweep, sweep.members, slots, options, spawn=spawn)
    assert pool.run(watch, stop, abort)
    assert [p.returncode for p, _ in procs] == [-9, -9]  # SIGKILL
    assert [log.read_text().count("sigint") for _, log in procs] == [2, 2]


@pytest.mark.parametrize(
    ("child", "status", "exit_code", "shown"),
    [
        (None, "completed", None, "completed"),
        (None, "running", None, "running elsewhere"),
        (ChildState.QUEUED, "pending", None, "queued"),
        (ChildState.NOT_STARTED, "interrupted", None, "not started"),
        (ChildState.RUNNING, "pending", None, "starting"),  # its run folder not written yet
        (ChildState.RUNNING, "running", None, "running"),
        (ChildState.ENDED, "completed", 0, "completed"),
        (ChildState.ENDED, "interrupted", 130, "interrupted"),
        (ChildState.ENDED, "running", 3, "running elsewhere"),  # claimed by another process
        (ChildState.ENDED, "failed", 1, "failed (exit 1: see its log)"),
        (ChildState.ENDED, "pending", 2, "pending (exit 2: see its log)"),
    ],
)
def test_a_members_state_joins_its_runs_and_its_child(child, status, exit_code, shown):
    from tui_trainer.cli.sweep_progress import state_text
    from tui_trainer.studies.parallel import MemberProgress

    row = MemberProgress(1, "m", status, child, exit_code=exit_code)
    assert state_text(row) == shown
