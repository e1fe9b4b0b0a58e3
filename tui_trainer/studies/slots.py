"""Where each child of `sweep --parallel N [--gpus 0,1]` runs: its slot.

With GPUs (`--gpus`, or every GPU torch sees unless `--device` is cpu/mps), slot i runs on
gpus[i % len(gpus)] through CUDA_VISIBLE_DEVICES; without, on the CPU. Every slot gets
`--set threads=<cores // N>` unless the user set `threads` (not part of a member's identity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tui_trainer.errors import UserError

MAX_PARALLEL = 256  # children at once: more would exhaust memory long before any GPU count


@dataclass(frozen=True)
class Slot:
    """Where one child runs: a GPU (the CUDA_VISIBLE_DEVICES value) or the CPU, and the
    `threads` it is given (None: the members' own)."""

    index: int  # 0-based
    gpu: str | None
    threads: int | None

    def describe(self) -> str:
        where = f"GPU {self.gpu}" if self.gpu is not None else "cpu"
        if self.threads is None:
            return where
        return f"{where}, {self.threads} thread{'s' if self.threads != 1 else ''}"


def parse_gpus(text: str) -> list[int]:
    """`--gpus 0,1` as indices, or UserError."""
    try:
        gpus = [int(part) for part in text.split(",")]
    except ValueError:
        gpus = []
    if not gpus or any(g < 0 for g in gpus):
        raise UserError(f"--gpus {text!r}: give GPU indices separated by commas, e.g. --gpus 0,1")
    if len(set(gpus)) != len(gpus):
        raise UserError(
            f"--gpus {text}: a GPU is named twice: name each once (--parallel N above the "
            "number of GPUs puts several members on each)"
        )
    return gpus


def sets_threads(set_: Sequence[str] | None) -> bool:
    """Whether the user's --set options fix `threads` (then the children keep it)."""
    return any(item.split("=", 1)[0].strip() == "threads" for item in set_ or ())


def plan_slots(
    parallel: int | None,
    gpus: Sequence[int] | None,
    *,
    device_count: int,
    cores: int,
    device: str | None = None,
    user_threads: bool = False,
    visible: str | None = None,
) -> list[Slot]:
    """The children's slots, or UserError for bad options.
    `device_count`: the GPUs torch sees; `visible`: the parent's CUDA_VISIBLE_DEVICES."""
    if parallel is not None and parallel < 1:
        raise UserError(f"--parallel {parallel}: give at least 1 member at once, e.g. --parallel 2")
    if parallel is not None and parallel > MAX_PARALLEL:
        raise UserError(
            f"--parallel {parallel}: give at most {MAX_PARALLEL} (each member is a process "
            "holding its own model and images), e.g. --parallel 4"
        )
    if gpus is not None:
        _check_gpus(gpus, device_count, device)
    elif device_count > 0 and device not in ("cpu", "mps"):
        gpus = list(range(device_count))
    count = parallel or (len(gpus) if gpus else 1)
    threads = None if user_threads else max(1, cores // count)
    names = _visible_names(visible, device_count)
    return [Slot(i, names[gpus[i % len(gpus)]] if gpus else None, threads) for i in range(count)]


def _check_gpus(gpus: Sequence[int], device_count: int, device: str | None) -> None:
    if device in ("cpu", "mps"):
        raise UserError(f"--gpus with --device {device}: drop one of the two")
    missing = [g for g in gpus if g >= device_count]
    if not missing:
        return
    if device_count == 0:
        raise UserError(
            f"--gpus {missing[0]}: this machine has no CUDA GPU (torch.cuda.device_count() "
            "is 0): drop --gpus to split the CPU cores between the members"
        )
    raise UserError(
        f"--gpus {missing[0]}: there is no such GPU, this machine has {device_count} "
        f"(0 to {device_count - 1})"
    )


def _visible_names(visible: str | None, device_count: int) -> list[str]:
    """The CUDA_VISIBLE_DEVICES value for each GPU index torch sees in the parent."""
    listed = [v.strip() for v in (visible or "").split(",") if v.strip()]
    if len(listed) >= device_count:
        return listed[:device_count]
    return [str(i) for i in range(device_count)]
