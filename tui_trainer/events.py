"""What the engine tells the world while it trains: plain frozen dataclasses sent to one callback.

The run writer (`runs.RunWriter`), the CLI's progress bar and the TUI's message pump all receive the
same events; none of them reaches into the engine. Every event carries its `run_id`, so a listener
that follows several runs can tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """A run's status, as `summary.json` stores it (a plain string there: a StrEnum compares and
    serialises as its value). The run store derives `crashed` and `stale`; the rest are written.
    What each means for a listing, `--resume`, a sweep and its exit code: runs/status.py."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"  # stopped on request (Ctrl-C, SIGTERM, the console's stop)
    DIVERGED = "diverged"  # the loss went non-finite or stayed far above its first value
    FAILED = "failed"  # an error ended it (out of memory, a broken process group, ...)
    PRUNED = "pruned"  # a search's pruner ended it after an epoch: final, as a result
    CRASHED = "crashed"  # derived: `running` on this host, but its process is gone
    STALE = "stale"  # derived: `running` on another host, whose heartbeat stopped changing


@dataclass(frozen=True, kw_only=True)
class RunStarted:
    run_id: str
    config: dict[str, Any]
    device: str
    precision: str
    num_classes: int
    num_train: int
    num_val: int
    num_test: int
    steps_per_epoch: int
    epochs: int
    start_epoch: int = 1  # > 1 when a run resumes


@dataclass(frozen=True, kw_only=True)
class Log:
    run_id: str
    message: str
    level: str = "info"  # info | warning | error


@dataclass(frozen=True, kw_only=True)
class Step:
    run_id: str
    epoch: int
    step: int  # 1-based within the epoch
    steps_per_epoch: int
    global_step: int
    loss: float
    lr: float


@dataclass(frozen=True, kw_only=True)
class Epoch:
    run_id: str
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float  # the LR used during this epoch (before the scheduler's step)
    seconds: float
    is_best: bool = False


@dataclass(frozen=True, kw_only=True)
class RunEnded:
    run_id: str
    status: RunStatus  # completed | interrupted | diverged | failed | pruned
    summary: dict[str, Any] = field(default_factory=dict)
    message: str = ""


Event = RunStarted | Log | Step | Epoch | RunEnded
EventCallback = Callable[[Event], None]


def fan_out(*callbacks: EventCallback | None) -> EventCallback:
    """One callback that forwards each event to every given callback, in order."""
    active = [cb for cb in callbacks if cb is not None]

    def forward(event: Event) -> None:
        for cb in active:
            cb(event)

    return forward
