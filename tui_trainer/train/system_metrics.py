"""System metrics of a run: the rows of `system.jsonl` and the peaks its summary records.

One JSON object a line, appended every ~2 s by the sampler (train/system_sampler.py) while the
run trains:

    t                        time.time() of the sample
    cpu_percent              the training process's CPU, percent of one core (up to 100 x cores)
    rss_bytes                its resident memory
    host_mem_used_bytes      the host's memory in use (total - available)
    host_mem_total_bytes     the host's memory
    cgroup_mem_limit_bytes   the cgroup's memory limit (containers, Slurm); null: none applies
    torch_peak_reserved_bytes  torch.cuda.max_memory_reserved of the run's device since the run
                             started training (its peak is reset then); null off CUDA
    note                     why a part is absent ("no NVIDIA GPU: ..."); null when all is there
    gpus                     every NVIDIA GPU NVML sees (empty without one):
        {index, uuid, name, used_by_run, util_percent, mem_used_bytes, mem_total_bytes,
         temp_c, power_w}; a field NVML does not support there (MIG, some boards) is null,
         and every field but index and used_by_run of a GPU NVML gives no handle for
    pid, host                the process that took the sample (a resumed run's file holds the
                             samples of each process that trained it); absent in older files

A field this process could not read is null, never a missing GPU. Readers skip a line cut short
by a kill, like metrics.jsonl's (`files.read_jsonl`).

`SystemPeaks` sums a run up: peak RSS, mean and peak utilisation of the GPUs the run uses, and
the peak GPU memory, torch's own when known (NVML's figure counts other users' jobs on the same
GPU too), else NVML's of the run's GPUs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tui_trainer.files import read_jsonl

SYSTEM_FILE = "system.jsonl"


def _number(value: Any) -> float | None:
    """A JSON number as float; anything else (null, a string from a hand edit) as None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


@dataclass(frozen=True)
class GpuSample:
    """One NVIDIA GPU at one sample; None: NVML does not report that field here."""

    index: int  # NVML's index: PCI order, whatever CUDA_VISIBLE_DEVICES says
    uuid: str | None
    name: str | None
    used_by_run: bool
    util_percent: float | None
    mem_used_bytes: int | None
    mem_total_bytes: int | None
    temp_c: float | None
    power_w: float | None

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> GpuSample | None:
        index = _int(row.get("index"))
        if index is None:
            return None
        text = {k: row.get(k) if isinstance(row.get(k), str) else None for k in ("uuid", "name")}
        return cls(
            index=index,
            used_by_run=row.get("used_by_run") is True,
            util_percent=_number(row.get("util_percent")),
            mem_used_bytes=_int(row.get("mem_used_bytes")),
            mem_total_bytes=_int(row.get("mem_total_bytes")),
            temp_c=_number(row.get("temp_c")),
            power_w=_number(row.get("power_w")),
            **text,
        )


@dataclass(frozen=True)
class SystemSample:
    """One line of system.jsonl."""

    t: float
    cpu_percent: float | None
    rss_bytes: int | None
    host_mem_used_bytes: int | None
    host_mem_total_bytes: int | None
    cgroup_mem_limit_bytes: int | None = None
    torch_peak_reserved_bytes: int | None = None
    note: str | None = None
    gpus: tuple[GpuSample, ...] = ()
    pid: int | None = None
    host: str | None = None

    def to_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "gpus"}
        return {**row, "gpus": [gpu.to_row() for gpu in self.gpus]}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SystemSample | None:
        """The sample of a line, None for a line that is not one (no time)."""
        t = _number(row.get("t"))
        if t is None:
            return None
        gpus = row.get("gpus") if isinstance(row.get("gpus"), list) else []
        parsed = (GpuSample.from_row(g) for g in gpus if isinstance(g, dict))
        note = row.get("note")
        return cls(
            t=t,
            cpu_percent=_number(row.get("cpu_percent")),
            rss_bytes=_int(row.get("rss_bytes")),
            host_mem_used_bytes=_int(row.get("host_mem_used_bytes")),
            host_mem_total_bytes=_int(row.get("host_mem_total_bytes")),
            cgroup_mem_limit_bytes=_int(row.get("cgroup_mem_limit_bytes")),
            torch_peak_reserved_bytes=_int(row.get("torch_peak_reserved_bytes")),
            note=note if isinstance(note, str) else None,
            gpus=tuple(g for g in parsed if g is not None),
            pid=_int(row.get("pid")),
            host=row.get("host") if isinstance(row.get("host"), str) else None,
        )

    @property
    def run_gpus(self) -> tuple[GpuSample, ...]:
        return tuple(g for g in self.gpus if g.used_by_run)


def read_samples(path: Path, tail_bytes: int | None = None) -> list[SystemSample]:
    """Every complete sample of a system.jsonl (none when the file is not there); with
    `tail_bytes`, those of its last bytes only (a live pane's, polled every second: a day's
    file is tens of MB)."""
    if tail_bytes is None:
        rows = read_jsonl(path)
    else:
        rows = _tail_rows(path, tail_bytes)
    parsed = (SystemSample.from_row(row) for row in rows)
    return [s for s in parsed if s is not None]


def _tail_rows(path: Path, tail_bytes: int) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(size - tail_bytes, 0))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = text.splitlines()
    if size > tail_bytes:
        lines = lines[1:]  # the first is cut where the tail began
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


@dataclass(frozen=True)
class SystemPeaks:
    """What a run's summary records of its system metrics (`summary.json`'s "system")."""

    samples: int
    peak_rss_bytes: int | None
    mean_cpu_percent: float | None
    gpu_util_mean: float | None  # over the samples of the GPUs the run uses
    gpu_util_peak: float | None
    gpu_mem_peak_bytes: int | None
    gpu_mem_source: str | None  # "torch" (the run's own reserved memory) | "nvml" (whole GPU)

    @classmethod
    def of(cls, samples: Iterable[SystemSample]) -> SystemPeaks:
        tracker = PeakTracker()
        for sample in samples:
            tracker.add(sample)
        return tracker.peaks()

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Any) -> SystemPeaks | None:
        """The peaks a summary recorded; None when it has none (a run before this version)."""
        if not isinstance(record, dict) or _int(record.get("samples")) is None:
            return None
        source = record.get("gpu_mem_source")
        return cls(
            samples=int(record["samples"]),
            peak_rss_bytes=_int(record.get("peak_rss_bytes")),
            mean_cpu_percent=_number(record.get("mean_cpu_percent")),
            gpu_util_mean=_number(record.get("gpu_util_mean")),
            gpu_util_peak=_number(record.get("gpu_util_peak")),
            gpu_mem_peak_bytes=_int(record.get("gpu_mem_peak_bytes")),
            gpu_mem_source=source if source in ("torch", "nvml") else None,
        )


class PeakTracker:
    """Running peaks and sums, so a long run's peaks need neither its samples kept nor its
    file read again."""

    def __init__(self) -> None:
        self.samples = 0
        self.peak_rss: int | None = None
        self.cpu = _Mean()
        self.util = _Mean()
        self.torch_peak: int | None = None
        self.nvml_peak: int | None = None

    def add(self, sample: SystemSample) -> None:
        self.samples += 1
        self.peak_rss = _max(self.peak_rss, sample.rss_bytes)
        self.cpu.add(sample.cpu_percent)
        self.torch_peak = _max(self.torch_peak, sample.torch_peak_reserved_bytes or None)
        for gpu in sample.run_gpus:
            self.util.add(gpu.util_percent)
            self.nvml_peak = _max(self.nvml_peak, gpu.mem_used_bytes)

    def peaks(self) -> SystemPeaks:
        if self.torch_peak is not None:
            mem, source = self.torch_peak, "torch"
        elif self.nvml_peak is not None:
            mem, source = self.nvml_peak, "nvml"
        else:
            mem, source = None, None
        return SystemPeaks(
            samples=self.samples,
            peak_rss_bytes=self.peak_rss,
            mean_cpu_percent=self.cpu.mean,
            gpu_util_mean=self.util.mean,
            gpu_util_peak=self.util.peak,
            gpu_mem_peak_bytes=mem,
            gpu_mem_source=source,
        )


class _Mean:
    def __init__(self) -> None:
        self.total, self.count, self.peak = 0.0, 0, None

    def add(self, value: float | None) -> None:
        if value is not None:
            self.total += value
            self.count += 1
            self.peak = _max(self.peak, value)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


def _max(current, value):
    if value is None:
        return current
    return value if current is None or value > current else current


def format_bytes(value: int | float | None) -> str:
    """1.2 GiB, 850 MiB; '-' for None."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    if unit == "GiB":
        return f"{size:.1f} GiB"
    return f"{size:.0f} {unit}"
