"""What a process knows of its launch and its CPU without importing torch: torchrun's rank from
the environment, and how many CPU threads it may use. Front ends that do not train (the CLI's
listing commands, the console's first screen) ask these, so they stay free of torch.
"""

from __future__ import annotations

import os


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def is_main_process() -> bool:
    """Rank 0 (or no torchrun): for front ends that print before or after a run, from the env."""
    return env_int("RANK", 0) == 0


def process_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun), from the env."""
    return env_int("RANK", 0)


def cpu_threads(requested: int) -> int:
    if requested:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1
