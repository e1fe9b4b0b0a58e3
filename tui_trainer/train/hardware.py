"""Which device a run uses (`device=auto` resolved here), what the hardware is called, and the
checks of an explicit precision. `precision=auto` is decided by a measurement
(train/precision_probe.py): whether bf16 pays cannot be read off a flag list (bf16 autocast is
1.8x faster than fp32 on one AVX512-BF16 CPU without AMX, 5x slower on an AVX2-only one).
"""

from __future__ import annotations

import hashlib
import platform
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


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpuinfo_field(name: str) -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return ""


def cpu_flags() -> set[str]:
    return set(_cpuinfo_field("flags").split())


def hardware_name(device: torch.device) -> str:
    """What decides how fast a precision runs on `device`: the GPU's name and compute capability,
    or the CPU's model name and a digest of its flags (the same model name can come with
    different instruction sets in a VM)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return f"{torch.cuda.get_device_name(index)} (sm_{major}{minor})"
    if device.type != "cpu":
        return device.type
    model = _cpuinfo_field("model name") or platform.processor() or platform.machine()
    flags = " ".join(sorted(cpu_flags()))
    return f"{model} (flags {hashlib.sha256(flags.encode()).hexdigest()[:12]})"


def check_precision(name: str, device: torch.device) -> str:
    """A precision as the config names it, refused where it cannot run (fp16 on a CPU)."""
    if name == "fp16" and device.type == "cpu":
        raise UserError("precision=fp16 is for GPUs: use bf16 or fp32 on the CPU")
    return name


def cuda_has_native_bf16() -> bool:
    """bf16 in hardware, not emulated in fp32 (GPUs before Ampere emulate it)."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation and reports native support only
        return torch.cuda.is_bf16_supported()


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a timer around it measures the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
