"""Which device and arithmetic a run uses: `device=auto` and `precision=auto` resolved here.

bf16 autocast only pays where the hardware has bf16 matrix units: CUDA GPUs with bf16 support and
CPUs with AMX (on a CPU without them bf16 is emulated and several times *slower* than fp32).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from tui_trainer.errors import UserError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA GPU is visible: use --device cpu or --device auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("device=mps but MPS is not available: use --device cpu or --device auto")
    return torch.device(name)


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_fast_bf16(flags: set[str] | None = None) -> bool:
    """AMX-BF16 tiles make bf16 GEMMs ~7x faster than fp32; AVX512-BF16 alone does not pay here."""
    flags = cpu_flags() if flags is None else flags
    return "amx_bf16" in flags


def resolve_precision(name: str, device: torch.device, flags: set[str] | None = None) -> str:
    if name != "auto":
        if name == "fp16" and device.type == "cpu":
            raise UserError("precision=fp16 is for GPUs: use bf16 or fp32 on the CPU")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_fast_bf16(flags):
        return "bf16"
    return "fp32"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a timer around it measures the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def cpu_threads(requested: int) -> int:
    if requested:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1
