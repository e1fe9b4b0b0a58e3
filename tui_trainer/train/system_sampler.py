"""The sampler: a daemon thread of the training process that appends a `SystemSample` to the
run folder's system.jsonl every ~2 s (train/system_metrics.py describes the file).

- The training thread only starts and stops it: the sources are opened in the thread (NVML's
  start can take a second), and a slow NVML call holds up the next sample, never a step.
- A source that raises is dropped with one note, which the rows carry from then on; a file that
  cannot be appended to (disk full) stops the writing, not the sampling (the peaks still count).
  Nothing the sampler meets ends the run.
- A resumed run appends to the same file; the sampler counts the samples already there in its
  peaks, so the summary's "system" always sums up the whole file.
- `stop()` sets its `threading.Event`, so the thread takes one last sample and ends, and joins
  it for at most STOP_TIMEOUT_S. The run writer stops it when it writes the run's end
  (`finish()`: stop, then the peaks, which reach summary.json that way only); launch.py stops
  it again in a `finally` for the ends that never reach a writer (the other ranks). A thread
  still in a source's call at the timeout is left behind (a daemon) and writes and counts
  nothing more, so the summary and the file agree; a second stop does not wait for it again.
- torch's peak is the process's since its last reset: launch.py resets it
  (`reset_torch_peak`) once the run is prepared, so it is this run's, not an earlier run's of
  the same process (a sequential sweep, the console) nor the precision probe's.
- torchrun: each node's local rank 0 samples its own host. Rank 0 writes the run folder's
  system.jsonl; another node's local rank 0 writes system-<host>.jsonl into the same folder when
  that folder is shared with it (it is there), and nothing when the folder is rank 0's alone.
  The GPUs a node's ranks train on (cuda:0 .. cuda:LOCAL_WORLD_SIZE-1) are marked used_by_run;
  torch's own peak is local rank 0's device's.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.inside import open_append
from tui_trainer.train.system_metrics import (
    SYSTEM_FILE,
    PeakTracker,
    SystemPeaks,
    SystemSample,
    read_samples,
)
from tui_trainer.train.system_sources import (
    GpuSource,
    HostSource,
    NvmlSource,
    PeakSource,
    PsutilSource,
    TorchPeakSource,
    cgroup_memory_limit,
    torch_to_nvml,
    torch_uuids,
)

INTERVAL_S = 2.0
STOP_TIMEOUT_S = 5.0  # a hung NVML call: the daemon thread is left behind, the run ends anyway


@dataclass
class Sources:
    host: HostSource | None = None
    gpus: GpuSource | None = None
    peak: PeakSource | None = None
    cgroup_mem_limit_bytes: int | None = None  # read once: a job's limit does not move
    notes: list[str] = field(default_factory=list)  # why a part is absent, one line each

    def close(self) -> None:
        close = getattr(self.gpus, "close", None)
        if close is not None:
            close()


class SystemSampler:
    """Samples `open_sources()`'s figures into `path` until stopped."""

    def __init__(
        self,
        path: Path,
        open_sources: Callable[[], Sources],
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.time,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.path = path
        self.interval_s = interval_s
        self.stop_timeout_s = stop_timeout_s
        self._open_sources = open_sources
        self._clock = clock
        self._sources: Sources | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the tracker: added to here, read by the run writer
        self._tracker = PeakTracker()
        self._writing = True
        self._abandoned = False  # a stop gave up waiting: the thread adds nothing more
        self._first_append = True
        self._thread = threading.Thread(target=self._loop, name="system-sampler", daemon=True)

    # --- the training thread's side ----------------------------------------------------------

    def start(self) -> SystemSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._abandoned or not self._thread.is_alive():
            return
        self._thread.join(self.stop_timeout_s)
        if self._thread.is_alive():  # stuck in a source: the run ends without its last rows
            with self._lock:
                self._abandoned = True

    def finish(self) -> SystemPeaks:
        """Stop (the last sample taken) and the peaks of every sample: the run writer's call
        at the run's end, so summary.json and system.jsonl count the same samples."""
        self.stop()
        return self.peaks()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def peaks(self) -> SystemPeaks:
        with self._lock:
            return self._tracker.peaks()

    # --- the sampler thread ------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            self._count_earlier_samples()
            self._ensure_sources()  # psutil's first CPU reading is taken (and thrown away) here
            while True:
                stopping = self._stop.wait(self.interval_s)
                self.sample_once()  # also once more at the stop: a short run has a row
                if stopping:
                    break
        finally:
            if self._sources is not None:
                _quietly(self._sources.close)

    def _count_earlier_samples(self) -> None:
        """A resumed run's earlier sessions' samples (a crashed one's too): the peaks, and so
        the summary, cover the whole of system.jsonl."""
        earlier = read_samples(self.path)
        with self._lock:
            for sample in earlier:
                self._tracker.add(sample)

    def sample_once(self) -> SystemSample:
        """Read every source once, append the row, count it in the peaks."""
        sources = self._ensure_sources()
        host = _read(sources, "host", "process and host figures")
        gpus = _read(sources, "gpus", "GPU figures")
        peak = _read(sources, "peak", "torch's GPU peak")
        sample = SystemSample(
            t=self._clock(),
            cpu_percent=host.cpu_percent if host else None,
            rss_bytes=host.rss_bytes if host else None,
            host_mem_used_bytes=host.host_mem_used_bytes if host else None,
            host_mem_total_bytes=host.host_mem_total_bytes if host else None,
            cgroup_mem_limit_bytes=sources.cgroup_mem_limit_bytes,
            torch_peak_reserved_bytes=peak,
            note="; ".join(sources.notes) or None,
            gpus=tuple(gpus or ()),
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        with self._lock:
            if self._abandoned:  # the summary's peaks are taken: a row now would not count
                return sample
            self._tracker.add(sample)
        self._append(sample)  # counted before any abandon, so the summary counts it too
        return sample

    def _ensure_sources(self) -> Sources:
        if self._sources is None:
            try:
                self._sources = self._open_sources()
            except Exception as exc:  # noqa: BLE001 - no figures, never a broken run
                self._sources = Sources(notes=[f"no system figures: {_one_line(exc)}"])
        return self._sources

    def _append(self, sample: SystemSample) -> None:
        if not self._writing:
            return
        line = json.dumps(sample.to_row()) + "\n"
        try:
            if self._first_append:  # a line a kill cut short must not swallow this one
                self._first_append = False
                line = ("" if _ends_a_line(self.path) else "\n") + line
            with os.fdopen(open_append(self.path), "a") as fh:
                fh.write(line)
        except OSError:
            self._writing = False  # the run writer reports a full disk; one owner of that line


def _ends_a_line(path: Path) -> bool:
    """The file is empty, missing, or ends with a newline."""
    try:
        with path.open("rb") as fh:
            if fh.seek(0, 2) == 0:
                return True
            fh.seek(-1, 2)
            return fh.read(1) == b"\n"
    except FileNotFoundError:
        return True


def _read(sources: Sources, name: str, what: str) -> Any:
    """One source's reading; a source that raises is dropped, with a note saying so."""
    source = getattr(sources, name)
    if source is None:
        return None
    try:
        return source.read()
    except Exception as exc:  # noqa: BLE001 - a broken source loses its figures, not the run
        setattr(sources, name, None)
        sources.notes.append(f"{what} stopped: {_one_line(exc)}")
        return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001, S110 - closing NVML at the end: nothing left to tell
        pass


# --- what one process of a run samples ----------------------------------------------------------


def open_sources(device: Any, used_cuda: set[int]) -> Sources:
    """psutil always; NVML when the host has it; torch's peak when the run trains on CUDA.
    `used_cuda`: torch's indices of the GPUs this host's ranks train on."""
    sources = Sources(host=PsutilSource(), cgroup_mem_limit_bytes=cgroup_memory_limit())
    try:
        nvml = NvmlSource()
    except Exception as exc:  # noqa: BLE001 - NVMLError, ImportError, OSError: no GPU part
        sources.notes.append(f"no GPU figures: NVML unavailable ({_one_line(exc)})")
        nvml = None
    if nvml is not None and nvml.count == 0:
        sources.notes.append("no GPU figures: NVML sees no NVIDIA GPU")
    elif nvml is not None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        mapping = torch_to_nvml(nvml.uuids, torch_uuids() if used_cuda else None, visible)
        nvml.used_indices = {mapping[i] for i in used_cuda if i in mapping}
        sources.gpus = nvml
    if getattr(device, "type", None) == "cuda":
        sources.peak = TorchPeakSource(device)
    return sources


def reset_torch_peak(device: Any, cuda: Any = None) -> None:
    """Start torch's peak memory afresh on the run's CUDA device: what TorchPeakSource reads
    after is this run's own peak. Called on the training thread, once prepare (and the
    precision probe) is done and before the sampler starts; nothing off CUDA."""
    if getattr(device, "type", None) != "cuda":
        return
    if cuda is None:
        import torch

        cuda = torch.cuda
    try:
        cuda.reset_peak_memory_stats(device)
    except RuntimeError:  # the figure then covers the process, as it did: never a broken run
        pass


def used_cuda_indices(device: Any, local_world_size: int, distributed: bool) -> set[int]:
    """torch's indices of the GPUs this host's processes of the run train on."""
    if getattr(device, "type", None) != "cuda":
        return set()
    if distributed:  # local rank r trains on cuda:r (train/topology.py)
        return set(range(local_world_size))
    return {device.index if device.index is not None else 0}


def start_sampler(run_dir: Path, topology: Any, device: Any) -> SystemSampler | None:
    """This process's sampler, started; None where it does not sample (not local rank 0, or
    another node's rank whose copy of the run folder is not there)."""
    if topology.local_rank != 0:
        return None
    if topology.is_main:
        path = run_dir / SYSTEM_FILE
    elif run_dir.is_dir():
        path = run_dir / f"system-{socket.gethostname()}.jsonl"
    else:
        return None
    used = used_cuda_indices(device, topology.local_world_size, topology.active)
    sampler = SystemSampler(path, lambda: open_sources(device, used))
    try:
        return sampler.start()
    except RuntimeError:  # no thread to be had: the run trains without its figures
        return None
