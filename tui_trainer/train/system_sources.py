"""Where the sampler's figures come from: psutil for the process and the host, NVML (the
`nvidia-ml-py` package, module `pynvml`) for the GPUs, torch for the run's own GPU peak.

Each source is a small class behind a Protocol, so tests hand the sampler fakes; NvmlSource and
PsutilSource also take the module they call, so a fake NVML exercises the real reading code.

NVML numbers GPUs in PCI order and ignores CUDA_VISIBLE_DEVICES, torch numbers the visible ones:
`torch_to_nvml` maps torch's indices onto NVML's through the GPUs' UUIDs (torch's
`get_device_properties(i).uuid`), else through CUDA_VISIBLE_DEVICES (indices, taken in PCI order
as with CUDA_DEVICE_ORDER=PCI_BUS_ID, or UUIDs and their prefixes), else one to one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tui_trainer.train.system_metrics import GpuSample

# cgroup v1 writes "no limit" as a huge number (the largest page-aligned int64)
NO_V1_LIMIT = 1 << 60


@dataclass(frozen=True)
class HostReading:
    cpu_percent: float | None
    rss_bytes: int | None
    host_mem_used_bytes: int | None
    host_mem_total_bytes: int | None


class HostSource(Protocol):
    def read(self) -> HostReading: ...


class GpuSource(Protocol):
    def read(self) -> list[GpuSample]: ...


class PeakSource(Protocol):
    def read(self) -> int | None: ...


class PsutilSource:
    """This process's CPU and RSS and the host's memory. psutil's first CPU reading of a process
    is 0.0 by definition (no interval yet): the constructor takes it and throws it away."""

    def __init__(self, psutil_module: Any = None) -> None:
        if psutil_module is None:
            import psutil as psutil_module
        self._psutil = psutil_module
        self._process = psutil_module.Process(os.getpid())
        self._process.cpu_percent(None)

    def read(self) -> HostReading:
        memory = self._psutil.virtual_memory()
        return HostReading(
            cpu_percent=float(self._process.cpu_percent(None)),
            rss_bytes=int(self._process.memory_info().rss),
            host_mem_used_bytes=int(memory.total - memory.available),
            host_mem_total_bytes=int(memory.total),
        )


class NvmlSource:
    """Every NVIDIA GPU of the host. A field the board does not support (MIG, some boards
    report no power or temperature) is None, and so is every field of a GPU whose handle NVML
    refuses (NO_PERMISSION, GPU_IS_LOST in a container or a Slurm job's cgroup): that GPU stays
    in the rows, the others keep their figures. The constructor raises when NVML cannot start
    (no driver, no library), which the sampler turns into its one-line note; NVML is shut down
    again when it fails after starting."""

    def __init__(self, used_indices: set[int] | None = None, nvml: Any = None) -> None:
        if nvml is None:
            import pynvml as nvml
        self._nvml = nvml
        nvml.nvmlInit()
        try:
            count = nvml.nvmlDeviceGetCount()
            self._handles = [self._handle(i) for i in range(count)]
            self.uuids = [self._field(nvml.nvmlDeviceGetUUID, h) for h in self._handles]
            self.names = [self._field(nvml.nvmlDeviceGetName, h) for h in self._handles]
        except BaseException:
            self.close()  # an NVML left started holds its library and its GPUs' state
            raise
        self.used_indices = used_indices or set()

    def _handle(self, index: int) -> Any:
        """The GPU's handle; None when NVML refuses it (that GPU's fields are all None)."""
        try:
            return self._nvml.nvmlDeviceGetHandleByIndex(index)
        except self._nvml.NVMLError:
            return None

    @property
    def count(self) -> int:
        return len(self._handles)

    def _field(self, fn, handle, *args) -> Any:
        if handle is None:  # a GPU NVML gave no handle for
            return None
        try:
            value = fn(handle, *args)
        except self._nvml.NVMLError:  # NOT_SUPPORTED on MIG, some boards; a lost GPU
            return None
        return value.decode() if isinstance(value, bytes) else value

    def read(self) -> list[GpuSample]:
        nvml = self._nvml
        gpus = []
        for index, handle in enumerate(self._handles):
            util = self._field(nvml.nvmlDeviceGetUtilizationRates, handle)
            memory = self._field(nvml.nvmlDeviceGetMemoryInfo, handle)
            temp = self._field(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
            milliwatts = self._field(nvml.nvmlDeviceGetPowerUsage, handle)
            gpus.append(
                GpuSample(
                    index=index,
                    uuid=self.uuids[index],
                    name=self.names[index],
                    used_by_run=index in self.used_indices,
                    util_percent=None if util is None else float(util.gpu),
                    mem_used_bytes=None if memory is None else int(memory.used),
                    mem_total_bytes=None if memory is None else int(memory.total),
                    temp_c=None if temp is None else float(temp),
                    power_w=None if milliwatts is None else milliwatts / 1000.0,
                )
            )
        return gpus

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass


class TorchPeakSource:
    """torch.cuda.max_memory_reserved of the run's device: the run's own peak, which NVML's
    per-GPU figure cannot tell apart from other jobs on the same GPU."""

    def __init__(self, device: Any, cuda: Any = None) -> None:
        if cuda is None:
            import torch

            cuda = torch.cuda
        self._cuda = cuda
        self._device = device

    def read(self) -> int | None:
        return int(self._cuda.max_memory_reserved(self._device))


def _bare_uuid(uuid: Any) -> str:
    """NVML says "GPU-8d3e...", torch's str(props.uuid) says "8d3e...": compare without it."""
    text = str(uuid).strip().lower()
    return text[4:] if text.startswith("gpu-") else text


def torch_to_nvml(
    nvml_uuids: list[str | None], torch_uuids: list[str] | None, visible: str | None
) -> dict[int, int]:
    """{torch's CUDA index: NVML's index} for the GPUs this process sees."""
    bare = [_bare_uuid(u) if u else "" for u in nvml_uuids]
    if torch_uuids:
        wanted = [_bare_uuid(u) for u in torch_uuids]
        return {t: bare.index(u) for t, u in enumerate(wanted) if u and u in bare}
    if visible is None or not visible.strip():
        return {i: i for i in range(len(nvml_uuids))} if visible is None else {}
    mapping: dict[int, int] = {}
    for torch_index, entry in enumerate(e.strip() for e in visible.split(",")):
        nvml_index = _visible_entry(entry, bare)
        if nvml_index is None:
            break  # CUDA stops at the first entry it cannot use
        mapping[torch_index] = nvml_index
    return mapping


def _visible_entry(entry: str, bare: list[str]) -> int | None:
    if entry.isdigit():
        return int(entry) if int(entry) < len(bare) else None
    prefix = _bare_uuid(entry)
    matches = [i for i, u in enumerate(bare) if prefix and u.startswith(prefix)]
    return matches[0] if len(matches) == 1 else None


def torch_uuids(cuda: Any = None) -> list[str] | None:
    """The UUID of each GPU torch sees; None when this torch does not say (older versions)."""
    if cuda is None:
        import torch

        cuda = torch.cuda
    try:
        return [str(cuda.get_device_properties(i).uuid) for i in range(cuda.device_count())]
    except (AttributeError, RuntimeError):
        return None


def cgroup_memory_limit(
    proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """The tightest memory limit over this process's cgroup and its parents (v2 `memory.max`,
    v1 `memory.limit_in_bytes`); None when none applies ("max", v1's huge number) or none can be
    read."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            limits += _limits_up(root, path, "memory.max")
        elif "memory" in controllers.split(","):
            limits += _limits_up(root / "memory", path, "memory.limit_in_bytes")
    return min(limits, default=None)


def _limits_up(base: Path, path: str, name: str) -> list[int]:
    """The limits in `name` from the cgroup at `path` up to the root of `base`."""
    parts = [p for p in path.split("/") if p and p != ".."]
    limits = []
    for depth in range(len(parts), -1, -1):
        try:
            text = (base.joinpath(*parts[:depth]) / name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < NO_V1_LIMIT:
            limits.append(int(text))
    return limits
