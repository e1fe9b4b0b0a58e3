"""The data-parallel helpers' arithmetic: shards, the batch split, and no-ops outside torchrun."""

import threading

import pytest
import torch

from tests.support.runs import tiny_config
from tui_trainer.data.batches import batch_order
from tui_trainer.errors import Stopped, UserError
from tui_trainer.train import topology as distributed
from tui_trainer.train.host import is_main_process
from tui_trainer.train.topology import Topology


def as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(world))


def test_outside_torchrun_everything_is_single_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    order = torch.randperm(10)
    topology = Topology.join(tiny_config())
    assert not topology.active and topology.is_main and is_main_process()
    assert torch.equal(topology.shard_train(order), order)
    assert torch.equal(topology.shard_eval(5), torch.arange(5))
    assert topology.local_batch(256) == 256
    stop = threading.Event()
    assert topology.step_loss(torch.tensor(1.5), 8, stop) == 1.5
    stop.set()
    assert topology.should_stop(stop)
    assert topology.sum_eval(3.0, 2) == (3.0, 2)
    assert topology.describe(tiny_config()) == {
        "world_size": 1,
        "per_rank_batch": 8,
        "backend": None,
    }


@pytest.mark.parametrize("n", [1, 2, 13, 24, 25])
def test_train_shards_make_up_the_single_process_batches(monkeypatch, n):
    world, batch = 3, 6  # global batch 6: 2 images per rank and step
    order = batch_order(n, seed=42, epoch=3, shuffle=True)
    shards = []
    for r in range(world):
        as_rank(monkeypatch, r, world)
        topology = Topology.from_env()
        shards.append(topology.shard_train(order))
        assert topology.local_batch(batch) == 2
    assert len({len(s) for s in shards}) == 1  # every rank takes the same number of steps
    steps = -(-len(shards[0]) // 2)
    assert steps == -(-n // batch)  # as many steps as a single process takes
    padding = len(torch.cat(shards)) - n
    assert 0 <= padding < world
    repeats = order.repeat(world)[:padding]  # the last step is filled up from the order's start
    padded = torch.cat([order, repeats])
    for k in range(steps):
        together = torch.cat([s[2 * k : 2 * k + 2] for s in shards])
        # the ranks' step k together is single-process batch k (plus the repeats in the last)
        assert sorted(together.tolist()) == sorted(padded[k * batch : (k + 1) * batch].tolist())


@pytest.mark.parametrize("n", [1, 2, 10, 11])
def test_eval_chunks_cover_each_image_once(monkeypatch, n):
    chunks = []
    for r in range(4):
        as_rank(monkeypatch, r, 4)
        chunks.append(Topology.from_env().shard_eval(n))
    assert torch.cat(chunks).tolist() == list(range(n))


def test_a_batch_that_does_not_split_is_refused_before_anything(monkeypatch):
    as_rank(monkeypatch, 1, 4)
    with pytest.raises(UserError, match=r"batch_size=10 does not split evenly over 4.*=8"):
        Topology.join(tiny_config(batch_size=10))


def test_a_broken_collective_is_reported_as_a_lost_peer(monkeypatch):
    as_rank(monkeypatch, 0, 2)
    gloo = RuntimeError(
        "[/src/gloo/transport/tcp/pair.cc:561] Connection closed by peer [::1]:9. This is "
        "typically caused by a remote worker crashing. GLHF!"
    )
    topology = Topology.from_env()
    message = topology.failure_message(gloo)
    assert message.startswith("another process of the 2-process job died or stopped responding")
    assert (
        "(RuntimeError: Connection closed by peer [::1]:9)" in message and "pair.cc" not in message
    )
    assert topology.failure_message(ValueError("x")) == "rank 0 of 2: ValueError: x"


def test_a_stop_on_any_rank_stops_all_unless_another_rank_failed():
    agreed = distributed._raise_agreed
    agreed([None, None])  # nothing failed
    with pytest.raises(Stopped, match="^stopped after 3/9$"):
        agreed([None, (1, "stopped", "stopped after 3/9")])
    with pytest.raises(UserError, match="^no data$"):  # bad input still reads as bad input
        agreed([(0, "stopped", "stopped after 3/9"), (1, "user", "no data")])
    with pytest.raises(RuntimeError, match="^rank 1 failed: OSError: disk$"):
        agreed([(0, "stopped", "stopped after 3/9"), (1, "error", "OSError: disk")])
