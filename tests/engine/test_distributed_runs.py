"""Data-parallel runs for real: two gloo processes under torch.distributed.run (torchrun) on the
tiny set, and the agreement on bad input between two forked ranks."""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.support.paths import REPO
from tests.support.ranks import on_two_ranks
from tests.support.runs import tiny_config
from tui_trainer.config import RunConfig
from tui_trainer.runs.results import load_test_results
from tui_trainer.runs.store import Run
from tui_trainer.train import engine
from tui_trainer.train.checkpoint import Checkpoint

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads worker pids from /proc")

# ResNet18: it has BatchNorm buffers, which the ranks must agree on before evaluating.
TINY_SET = [
    "model=resnet18",
    "lr=0.01",
    "image_size=64",
    "resize=72",
    "batch_size=8",
    "precision=fp32",
    "device=cpu",
    "threads=1",
    "last_batch=keep",  # each epoch ends on a partial batch, shared out across the ranks
]


def torchrun(data: Path, runs_dir: Path, log: Path, *sets: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    args += ["-m", "tui_trainer", "run", "scratch", "--data", str(data)]
    args += ["--runs-dir", str(runs_dir)]
    for item in [*TINY_SET, *sets]:
        args += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUI_TRAINER_DIST_TIMEOUT": "60"}
    with log.open("w") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def single_process_eval(run: Run, data: Path) -> dict[str, tuple[float, float]]:
    """best.pt evaluated by a plain single process on the same splits."""
    cfg = RunConfig.from_dict(run.config())
    prep = engine.prepare(cfg, data)
    model = prep.model
    model.load_state_dict(torch.load(run.best_path, weights_only=True)["model"])
    ctx = engine.make_context(prep)
    return {name: engine.evaluate(model, prep.tensors[name], cfg, ctx) for name in ("val", "test")}


def test_two_ranks_write_one_run_that_a_single_process_agrees_with(tiny_data, tmp_path):
    runs_dir, log = tmp_path / "runs", tmp_path / "torchrun.log"
    job = torchrun(tiny_data, runs_dir, log, "epochs=2")
    assert job.wait(timeout=400) == 0, log.read_text()
    output = log.read_text()
    (folder,) = runs_dir.iterdir()
    run = Run(folder)
    # rank 0 alone printed and wrote: one line per epoch, every step once
    assert output.count("epoch 1/2") == 1 and output.count("status: completed") == 1
    steps = [m["global_step"] for m in run.steps()]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 2 * 2  # 12 images / 8
    assert [m["epoch"] for m in run.epochs()] == [1, 2]
    meta = run.meta()
    assert meta["config"]["batch_size"] == 8
    assert meta["distributed"] == {"world_size": 2, "per_rank_batch": 4, "backend": "gloo"}
    summary = run.summary()
    assert summary["status"] == "completed" == run.status()
    single = single_process_eval(run, tiny_data)
    assert summary["max_val_acc"] == single["val"][1]
    assert summary["test_acc"] == single["test"][1]
    assert summary["test_loss"] == pytest.approx(single["test"][0], rel=1e-4)
    # the per-class results come from the same pass, gathered from both ranks' chunks
    results = load_test_results(run.path)
    assert sum(c["total"] for c in results["per_class"]) == summary["num_test"]
    assert results["accuracy"] == summary["test_acc"]


def worker_pid(agent: int, rank: int) -> int:
    """The pid of the torchrun worker running `rank`, found among the agent's children."""
    for child in Path(f"/proc/{agent}/task/{agent}/children").read_text().split():
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(child)
    raise AssertionError(f"no worker with RANK={rank} under pid {agent}")


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_killing_a_rank_fails_the_run_quickly_and_leaves_it_resumable(tiny_data, tmp_path):
    runs_dir, log = tmp_path / "runs", tmp_path / "torchrun.log"
    job = torchrun(tiny_data, runs_dir, log, "epochs=8")
    try:
        wait_for(lambda: any(runs_dir.glob("*/metrics.jsonl")), 400, "the run folder")
        (folder,) = runs_dir.iterdir()
        run = Run(folder)
        wait_for(lambda: run.epochs() or job.poll() is not None, 400, "epoch 1")
        os.kill(worker_pid(job.pid, 1), signal.SIGKILL)
        killed = time.monotonic()
        code = job.wait(timeout=120)
        waited = time.monotonic() - killed
    finally:
        if job.poll() is None:
            job.kill()
    output = log.read_text()
    assert code != 0 and waited < 60, output
    summary = run.summary()
    assert run.status() == "failed", (summary, output)
    assert "died or stopped responding" in summary["message"]
    assert "status: failed (another process of the 2-process job died" in output
    done = summary["epochs_done"]
    assert 1 <= done < 8 and len(run.epochs()) == done
    # resumable: last.pt holds the last finished epoch; a single process carries on from it
    resume = Checkpoint.load(run.path)
    assert resume.epoch == done and resume.best_model is not None
    cfg = dataclasses.replace(RunConfig.from_dict(run.config()), epochs=done + 1)
    prep = engine.prepare(cfg, tiny_data)
    ended = engine.train(prep, lambda e: None, threading.Event(), resume=resume)
    assert ended.status == "completed" and ended.summary["epochs_done"] == done + 1


# --- agreement on bad input, between two forked ranks (no torchrun start-up cost) -----------------


def test_bad_input_on_one_rank_fails_every_rank_before_a_folder_exists(tiny_data, tmp_path):
    from tui_trainer.runs.launch import start_run

    runs_dir = tmp_path / "runs"

    def start(rank: int) -> None:
        data = tiny_data if rank == 0 else tmp_path / "missing"  # only rank 1 lacks the data
        start_run(
            tiny_config(model="resnet18", epochs=1, threads=1),
            preset="test",
            overrides={},
            data_dir=data,
            runs_dir=runs_dir,
        )

    outcome = on_two_ranks(start)
    assert outcome[0] == outcome[1], outcome
    assert outcome[0].startswith("UserError: data folder") and "missing" in outcome[0]
    assert not any(runs_dir.iterdir())


def start_stopped_on(stopped: int, rank: int, data: Path, runs_dir: Path, epochs: int):
    """start_run as `rank`, the stop event set from the start on rank `stopped` alone (as if only
    that rank got the signal)."""
    from tui_trainer.runs.launch import start_run

    stop = threading.Event()
    if rank == stopped:
        stop.set()
    return start_run(
        tiny_config(model="resnet18", epochs=epochs, threads=1),
        preset="test",
        overrides={},
        data_dir=data,
        runs_dir=runs_dir,
        stop=stop,
    )


def test_a_stop_on_one_rank_stops_both_at_the_same_step(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"

    def start(rank: int) -> None:
        # rank 1 loads the images rank 0 decoded and cached: its stop comes at the first step
        _, ended = start_stopped_on(1, rank, tiny_data, runs_dir, epochs=2)
        assert ended.status == "interrupted", ended

    assert on_two_ranks(start) == {0: "ok", 1: "ok"}
    (folder,) = runs_dir.iterdir()
    run = Run(folder)
    # the flag travels with step 1's loss all-reduce: both ranks stop before step 2
    assert run.status() == "interrupted" and [m["step"] for m in run.steps()] == [1]
    assert not run.last_path.exists()


def test_a_stop_on_one_rank_during_the_decode_stops_both_before_a_folder_exists(
    tiny_data, tmp_path
):
    runs_dir = tmp_path / "runs"

    def start(rank: int) -> None:
        # rank 0 decodes first and stops at once; rank 1 then decodes them all, yet stops too
        run, ended = start_stopped_on(0, rank, tiny_data, runs_dir, epochs=1)
        assert run is None and ended.status == "interrupted", ended
        assert ended.message.endswith("no run folder was created"), ended

    assert on_two_ranks(start) == {0: "ok", 1: "ok"}
    assert not any(runs_dir.iterdir())


def test_eval_chunks_gather_into_the_whole_split_in_order():
    from tui_trainer.train.topology import Topology

    def check(rank: int) -> None:
        topology = Topology.join(tiny_config())
        try:
            chunk = topology.shard_eval(5)  # rank 0: 0, 1, 2; rank 1: 3, 4
            whole = topology.gather_eval(chunk * 10, 5)
            assert whole.tolist() == [0, 10, 20, 30, 40], whole
        finally:
            topology.shutdown()

    assert on_two_ranks(check) == {0: "ok", 1: "ok"}


def test_eval_sums_add_up_across_ranks_as_numbers_or_device_tensors():
    from tui_trainer.train.topology import Topology

    def check(rank: int) -> None:
        topology = Topology.join(tiny_config())
        try:
            assert topology.sum_eval(rank + 0.5, rank + 1) == (2.0, 3)
            loss, correct = topology.sum_eval(torch.tensor(rank + 0.5), torch.tensor(rank + 1))
            assert (loss.item(), correct.item(), correct.dtype) == (2.0, 3, torch.int64)
        finally:
            topology.shutdown()

    assert on_two_ranks(check) == {0: "ok", 1: "ok"}
