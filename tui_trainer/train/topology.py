"""Data-parallel training under `torchrun`: PyTorch's DistributedDataParallel, one process per GPU
(or several CPU processes), one ordinary run folder written by rank 0.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK and the rendezvous address. `Topology.join` reads them
once per run (joining the process group) into one `Topology` object that the run's layers are
handed; without them (or with a world of one) its methods are no-ops and the engine trains as a
single process.

- batch_size keeps the report's meaning, the global batch: each of N ranks takes batch_size / N.
- train: every rank draws the permutation a single process would draw for (seed, epoch), pads it
  to a multiple of N by repeating its start (at most N-1 repeats, all in the last step) and takes
  every N-th index (DistributedSampler's rule over the in-memory tensors). Step k of all ranks
  together is single-process batch k, so DDP's averaged gradient is that batch's gradient.
- eval: each rank takes a contiguous chunk (no padding); loss sums and correct counts are summed
  across ranks, so accuracies equal a single-process evaluation exactly.
- stop: the per-step all-reduce of the loss also carries a stop flag, so all ranks stop at the same
  step. A dead peer breaks the next collective at once with gloo, and torchrun stops the others
  (SIGTERM, SIGKILL 30 s later; NCCL otherwise waits for the process-group timeout). Rank 0 records
  the run as failed, or, if rank 0 itself died, the folder reads as crashed; last.pt resumes it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.errors import Stopped, UserError
from tui_trainer.train.hardware import resolve_device
from tui_trainer.train.host import cpu_threads, env_int

TIMEOUT_ENV = "TUI_TRAINER_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600  # long enough for local rank 0 to decode the full dataset on first use
T = TypeVar("T")


COMM_ERROR_HINTS = ("gloo", "nccl", "connection", "timed out", "timeout", "socket")


def _timeout() -> timedelta:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise UserError(f"{TIMEOUT_ENV}={raw!r} is not a positive number of seconds: e.g. 600")
    return timedelta(seconds=seconds)


def check_batch(batch_size: int, world: int) -> None:
    if batch_size % world:
        fit = max(world, round(batch_size / world) * world)
        raise UserError(
            f"batch_size={batch_size} does not split evenly over {world} processes: "
            f"use a multiple of {world}, e.g. --set batch_size={fit}"
        )


def _init_parameters() -> set[str]:
    import inspect

    return set(inspect.signature(dist.init_process_group).parameters)


def _failure(exc: Exception, rank: int) -> tuple[int, str, str]:
    """(rank, kind, message) of an exception, for every rank to raise alike."""
    if isinstance(exc, UserError):
        return rank, "user", str(exc)
    if isinstance(exc, Stopped):
        return rank, "stopped", str(exc)
    return rank, "error", f"{type(exc).__name__}: {exc}"


def _raise_agreed(failures: list[tuple[int, str, str] | None]) -> None:
    found = [f for f in failures if f is not None]
    if not found:
        return
    # a stop yields to a failure elsewhere: bad input on any rank still reads as bad input
    who, kind, message = next((f for f in found if f[1] != "stopped"), found[0])
    if kind == "user":
        raise UserError(message)
    if kind == "stopped":
        raise Stopped(message)
    raise RuntimeError(f"rank {who} failed: {message}")


@dataclass
class Topology:
    """The processes of one run and this one's place among them: made once per run by `join`
    (or `from_env` to ask without joining), then handed to every layer that asks."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    launched: bool = False  # RANK is set: started by torchrun (or a launcher setting its vars)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    agreed_stop: bool = False  # the stop flag as all ranks agreed at the last step

    @classmethod
    def from_env(cls) -> Topology:
        """What torchrun's variables say (a single process without them); joins nothing."""
        return cls(
            rank=env_int("RANK", 0),
            world_size=env_int("WORLD_SIZE", 1),
            local_rank=env_int("LOCAL_RANK", 0),
            local_world_size=env_int("LOCAL_WORLD_SIZE", 1),
            launched="RANK" in os.environ,
        )

    @classmethod
    def join(cls, config: RunConfig) -> Topology:
        """This rank's topology and device; under torchrun also join the process group (once per
        process). Bad input raises UserError identically on every rank, before anything is
        written."""
        topology = cls.from_env()
        topology.device = topology._setup(config)
        return topology

    @property
    def active(self) -> bool:
        """Started by torchrun with more than one process."""
        return self.launched and self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder and talks to the user; every other rank stays silent."""
        return self.rank == 0

    def _setup(self, config: RunConfig) -> torch.device:
        device = resolve_device(config.device)
        if not self.active:
            return device
        check_batch(config.batch_size, self.world_size)
        if device.type == "mps":
            raise UserError(
                "device=mps cannot train data-parallel: use --device cuda or --device cpu"
            )
        if device.type == "cuda":
            gpus = torch.cuda.device_count()
            if self.local_rank >= gpus:
                raise UserError(
                    f"LOCAL_RANK={self.local_rank} but this machine shows {gpus} GPU(s): pass "
                    f"--nproc-per-node {gpus} or fewer to torchrun"
                )
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)  # NCCL and object collectives use the current device
        if not dist.is_initialized():
            timeout = _timeout()
            if device.type == "cuda" and dist.is_nccl_available():
                # device_id (torch >= 2.3) binds the group to this rank's GPU at once
                bind = {"device_id": device} if "device_id" in _init_parameters() else {}
                dist.init_process_group("nccl", timeout=timeout, **bind)
            else:
                dist.init_process_group("gloo", timeout=timeout)
        return device

    def describe(self, config: RunConfig) -> dict[str, Any]:
        """What config.json records about the split of the work."""
        world = self.world_size if self.active else 1
        return {
            "world_size": world,
            "per_rank_batch": config.batch_size // world,
            "backend": dist.get_backend() if self.active and dist.is_initialized() else None,
        }

    def main_only(self, callback: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """`callback` on rank 0, a no-op elsewhere (events, progress, the run writer)."""
        if self.is_main and callback is not None:
            return callback
        return lambda event: None

    def local_batch(self, batch_size: int) -> int:
        """This rank's share of the global batch."""
        return batch_size // self.world_size if self.active else batch_size

    def threads_per_rank(self, requested: int) -> int:
        """threads=0 means every core: shared among the ranks on this machine."""
        threads = cpu_threads(requested)
        if requested or not self.active:
            return threads
        return max(1, threads // max(self.local_world_size, 1))

    # --- agreeing before the run folder exists ---------------------------------------------------

    def agree(self, fn: Callable[[], T], local_main_first: bool = False) -> T:
        """Run `fn` on every rank; if it failed on any rank, raise on every rank (a UserError
        stays a UserError, so bad input exits 2 everywhere; a `Stopped` on one rank stops them
        all). `local_main_first`: local rank 0 goes first (it decodes the images and fills the
        disk cache; the other ranks on its machine then load it)."""
        if not self.active:
            return fn()
        if local_main_first and self.local_rank != 0:
            dist.barrier()
        result, failure = None, None
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - reported to every rank below, then raised
            failure = _failure(exc, self.rank)
        finally:
            if local_main_first and self.local_rank == 0:
                dist.barrier()
        failures: list[Any] = [None] * self.world_size
        dist.all_gather_object(failures, failure)
        _raise_agreed(failures)
        return result  # type: ignore[return-value]

    def from_main(self, fn: Callable[[], T]) -> T:
        """Run `fn` on rank 0 alone and hand its result (or its failure) to every rank."""
        if not self.active:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box = [("ok", fn())]
            except Exception as exc:  # noqa: BLE001 - reported to every rank below, then raised
                box = [("failed", _failure(exc, self.rank))]
        dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "failed":
            _raise_agreed([value])
        return value

    # --- training --------------------------------------------------------------------------------

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP around the model for the training forward/backward; checkpoints and evaluation
        keep using the plain module (its state dict has no `module.` prefix)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def unwrap(self, model: nn.Module) -> nn.Module:
        return getattr(model, "module", model) if self.active else model

    def shard_train(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's indices of the epoch's permutation: padded to a multiple of the world
        size by repeating its start, then every world_size-th index from this rank's offset."""
        if not self.active:
            return order
        world = self.world_size
        total = math.ceil(len(order) / world) * world
        if total > len(order):
            order = order.repeat(math.ceil(total / len(order)))[:total]
        return order[self.rank :: world]

    def shard_eval(self, n: int) -> torch.Tensor:
        """This rank's contiguous chunk of 0..n-1; the chunks cover every index once."""
        index = torch.arange(n)
        if not self.active:
            return index
        return torch.tensor_split(index, self.world_size)[self.rank]

    def step_loss(self, loss: torch.Tensor, batch: int, stop) -> float:
        """The step's loss over the global batch; all ranks also agree on whether to stop."""
        if not self.active:
            return loss.item()
        sums = torch.zeros(3, dtype=torch.float64, device=loss.device)
        sums[0] = loss.detach().double() * batch
        sums[1] = batch
        sums[2] = float(stop.is_set())
        dist.all_reduce(sums)
        self.agreed_stop = bool(sums[2].item() > 0)
        return (sums[0] / sums[1]).item()

    def should_stop(self, stop) -> bool:
        """Single process: the stop event itself. Distributed: the flag all ranks agreed on at
        the last step, so every rank stops at the same point (a rank may not leave a collective
        alone)."""
        if not self.active:
            return stop.is_set()
        return self.agreed_stop

    def sum_eval(self, loss_sum, correct):
        """The whole split's loss sum and correct count from every rank's chunk. Takes and
        returns Python numbers, or 0-d tensors (sums kept on the device)."""
        if not self.active:
            return loss_sum, correct
        sums = torch.stack(
            [torch.as_tensor(v, device=self.device).to(torch.float64) for v in (loss_sum, correct)]
        )
        dist.all_reduce(sums)
        if isinstance(loss_sum, torch.Tensor):
            return sums[0], sums[1].round().to(torch.int64)
        return sums[0].item(), int(round(sums[1].item()))

    def gather_eval(self, values: torch.Tensor, n: int) -> torch.Tensor:
        """A per-image int64 tensor over the whole split (n images) from each rank's
        `shard_eval` chunk of it, on every rank: the chunks are contiguous, so rank order is
        split order."""
        if not self.active:
            return values
        sizes = [len(chunk) for chunk in torch.tensor_split(torch.arange(n), self.world_size)]
        padded = torch.zeros(max(sizes), dtype=torch.int64, device=self.device)  # equal sizes
        padded[: len(values)] = values
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])

    def sync_buffers(self, model: nn.Module) -> None:
        """BatchNorm statistics from rank 0: each rank's last training batch moved its own."""
        if not self.active:
            return
        for buffer in self.unwrap(model).buffers():
            dist.broadcast(buffer, src=0)

    def failure_message(self, exc: BaseException) -> str:
        """One line for summary.json; a broken collective says what happened and what is left."""
        detail = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", str(exc))  # gloo's source line
        text = f"{type(exc).__name__}: {detail}".splitlines()[0]
        if not self.active:
            return text
        broken = isinstance(exc, dist.DistError) or any(h in text.lower() for h in COMM_ERROR_HINTS)
        if not broken:
            return f"rank {self.rank} of {self.world_size}: {text}"
        first = text.split(". ", 1)[0].rstrip(".")  # gloo goes on with generic advice
        return (
            f"another process of the {self.world_size}-process job died or stopped responding "
            f"({first}): last.pt holds the last finished epoch"
        )

    def shutdown(self) -> None:
        """Leave the process group (no-op outside torchrun)."""
        if self.active and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - leaving a broken group: the process exits anyway
                pass
