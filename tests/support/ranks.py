"""Two ranks of a process group in forked children (no torchrun start-up cost): for tests of
what every rank must agree on (bad input, a stop, who measures)."""

import multiprocessing
import os
import socket

import torch

from tui_trainer.errors import UserError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_rank(rank: int, port: int, fn, results) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)  # a forked child must not rely on the parent's thread pool
    try:
        fn(rank)
        results.put((rank, "ok"))
    except UserError as exc:
        results.put((rank, f"UserError: {exc}"))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        results.put((rank, f"{type(exc).__name__}: {exc}"))
    finally:
        results.close()
        results.join_thread()  # the put is sent by a thread: let it finish
        os._exit(0)  # skip pytest's teardown in the child


def on_two_ranks(fn) -> dict[int, str]:
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_as_rank, args=(r, port, fn, results)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        out = dict(results.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return out
