"""The system-metrics sampler and its file: fake NVML / psutil sources, the GPU index mapping,
cgroup limits, system.jsonl read back, the peaks, and the sampler inside a real tiny run."""

from __future__ import annotations

import json
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from tests.support.runs import tiny_config
from tui_trainer.runs import launch
from tui_trainer.runs.launch import start_run
from tui_trainer.runs.store import Run
from tui_trainer.train import system_sampler
from tui_trainer.train.system_metrics import GpuSample, SystemPeaks, SystemSample
from tui_trainer.train.system_sampler import (
    Sources,
    SystemSampler,
    open_sources,
    start_sampler,
    used_cuda_indices,
)
from tui_trainer.train.system_sources import (
    HostReading,
    NvmlSource,
    PsutilSource,
    TorchPeakSource,
    cgroup_memory_limit,
    torch_to_nvml,
)

GIB = 1 << 30


class FakeNvmlError(Exception):
    pass


def fake_nvml(
    boards: list[dict],
    fail_init: bool = False,
    refused: frozenset[int] = frozenset(),
    fail_count: bool = False,
) -> SimpleNamespace:
    """An NVML module over `boards`: each a dict of what the board reports; a missing key
    raises NVMLError (NOT_SUPPORTED), as MIG and some boards do. The handles of `refused`
    raise (NO_PERMISSION, as in a container or a Slurm cgroup); `fail_count` makes the count
    raise after a good init. `shutdowns` counts nvmlShutdown's calls."""

    def field(name):
        def read(handle, *args):
            if name not in boards[handle]:
                raise FakeNvmlError("Not Supported")
            return boards[handle][name]

        return read

    def init():
        if fail_init:
            raise FakeNvmlError("NVML Shared Library Not Found")

    def count():
        if fail_count:
            raise FakeNvmlError("Unknown Error")
        return len(boards)

    def handle(index):
        if index in refused:
            raise FakeNvmlError("Insufficient Permissions")
        return index

    def shutdown():
        nvml.shutdowns += 1

    nvml = SimpleNamespace(
        shutdowns=0,
        NVMLError=FakeNvmlError,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=init,
        nvmlShutdown=shutdown,
        nvmlDeviceGetCount=count,
        nvmlDeviceGetHandleByIndex=handle,
        nvmlDeviceGetUUID=field("uuid"),
        nvmlDeviceGetName=field("name"),
        nvmlDeviceGetUtilizationRates=field("util"),
        nvmlDeviceGetMemoryInfo=field("memory"),
        nvmlDeviceGetTemperature=field("temp"),
        nvmlDeviceGetPowerUsage=field("power_mw"),
    )
    return nvml


FULL_BOARD = {
    "uuid": b"GPU-aaaa-1111",
    "name": b"NVIDIA H100",
    "util": SimpleNamespace(gpu=87),
    "memory": SimpleNamespace(used=10 * GIB, total=80 * GIB),
    "temp": 61,
    "power_mw": 312_500,
}
MIG_BOARD = {"uuid": "GPU-bbbb-2222", "name": "NVIDIA A100 MIG", "memory": FULL_BOARD["memory"]}


class FakeHost:
    def __init__(self, rss: list[int]):
        self.rss = iter(rss)

    def read(self) -> HostReading:
        return HostReading(150.0, next(self.rss), 4 * GIB, 16 * GIB)


class ListGpus:
    def __init__(self, gpus: list[GpuSample], fail_after: int | None = None):
        self.gpus, self.reads, self.fail_after = gpus, 0, fail_after

    def read(self) -> list[GpuSample]:
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise FakeNvmlError("GPU is lost\nsecond line")
        return self.gpus


def gpu(index: int, used: bool, util: float | None, mem: int | None) -> GpuSample:
    return GpuSample(index, f"GPU-{index}", "board", used, util, mem, 80 * GIB, 50.0, 100.0)


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- sources -------------------------------------------------------------------------------


def test_nvml_source_reads_every_gpu_with_unsupported_fields_as_null():
    source = NvmlSource(used_indices={1}, nvml=fake_nvml([FULL_BOARD, MIG_BOARD]))
    full, mig = source.read()
    assert (full.uuid, full.name, full.used_by_run) == ("GPU-aaaa-1111", "NVIDIA H100", False)
    assert (full.util_percent, full.mem_used_bytes, full.mem_total_bytes) == (
        87.0,
        10 * GIB,
        80 * GIB,
    )
    assert (full.temp_c, full.power_w) == (61.0, 312.5)  # NVML's milliwatts in watts
    # the MIG slice is kept, its unsupported figures null
    assert mig.index == 1 and mig.used_by_run and mig.mem_used_bytes == 10 * GIB
    assert (mig.util_percent, mig.temp_c, mig.power_w) == (None, None, None)


def test_a_gpu_whose_handle_nvml_refuses_stays_with_null_fields_and_the_others_read():
    boards = [FULL_BOARD, {**FULL_BOARD, "uuid": "GPU-cccc"}, {**FULL_BOARD, "uuid": "GPU-dddd"}]
    nvml = fake_nvml(boards, refused=frozenset({1}))
    source = NvmlSource(used_indices={1, 2}, nvml=nvml)
    first, refused, third = source.read()
    assert (first.uuid, first.util_percent, third.uuid, third.power_w) == (
        "GPU-aaaa-1111",
        87.0,
        "GPU-dddd",
        312.5,
    )
    assert refused.index == 1 and refused.used_by_run  # kept, in its place, still the run's
    nulls = (refused.uuid, refused.name, refused.util_percent, refused.mem_used_bytes)
    assert nulls + (refused.mem_total_bytes, refused.temp_c, refused.power_w) == (None,) * 7
    assert source.uuids == ["GPU-aaaa-1111", None, "GPU-dddd"] and nvml.shutdowns == 0


def test_nvml_failing_after_its_start_is_shut_down_again():
    nvml = fake_nvml([FULL_BOARD], fail_count=True)
    with pytest.raises(FakeNvmlError, match="Unknown Error"):
        NvmlSource(nvml=nvml)
    assert nvml.shutdowns == 1
    with pytest.raises(FakeNvmlError):  # NVML never started: nothing to shut down
        NvmlSource(nvml=fake_nvml([FULL_BOARD], fail_init=True))


def test_psutil_source_throws_away_the_first_cpu_reading():
    readings = iter([0.0, 180.0])
    process = SimpleNamespace(
        cpu_percent=lambda interval: next(readings), memory_info=lambda: SimpleNamespace(rss=GIB)
    )
    psutil = SimpleNamespace(
        Process=lambda pid: process,
        virtual_memory=lambda: SimpleNamespace(total=16 * GIB, available=12 * GIB),
    )
    reading = PsutilSource(psutil).read()
    assert reading == HostReading(180.0, GIB, 4 * GIB, 16 * GIB)


class FakeAllocator:
    """torch.cuda's reserved-memory figures: the peak is the process's since the last reset."""

    def __init__(self) -> None:
        self.reserved = self.peak = 0
        self.resets: list[object] = []

    def reserve(self, size: int) -> None:
        self.reserved = size
        self.peak = max(self.peak, size)

    def max_memory_reserved(self, device) -> int:
        return self.peak

    def reset_peak_memory_stats(self, device) -> None:
        self.resets.append(device)
        self.peak = self.reserved


def test_the_torch_peak_after_a_reset_is_the_runs_not_an_earlier_runs():
    cuda = FakeAllocator()
    device = SimpleNamespace(type="cuda", index=0)
    cuda.reserve(9 * GIB)  # an earlier member of the sweep, then the precision probe
    cuda.reserve(GIB)  # what the cache keeps once they are done
    system_sampler.reset_torch_peak(device, cuda)
    cuda.reserve(3 * GIB)  # this run
    assert TorchPeakSource(device, cuda).read() == 3 * GIB and cuda.resets == [device]
    system_sampler.reset_torch_peak(SimpleNamespace(type="cpu", index=None), cuda)
    assert cuda.resets == [device]  # off CUDA: torch.cuda is not touched


def test_a_run_resets_the_torch_peak_before_its_sampler_starts(tiny_data, tmp_path, monkeypatch):
    calls = []
    real_start = launch.start_sampler

    def reset(device):
        calls.append(("reset", device.type, threading.current_thread()))

    def start(run_dir, topology, device):
        calls.append(("start", device.type, threading.current_thread()))
        return real_start(run_dir, topology, device)

    monkeypatch.setattr(launch, "reset_torch_peak", reset)
    monkeypatch.setattr(launch, "start_sampler", start)
    _, ended = start_run(
        tiny_config(epochs=1),
        preset="test",
        overrides={},
        data_dir=tiny_data,
        runs_dir=tmp_path / "runs",
    )
    assert ended.status == "completed"
    here = threading.current_thread()  # the thread the run trains on
    assert calls == [("reset", "cpu", here), ("start", "cpu", here)]


def test_torch_peak_source_asks_for_the_runs_device():
    asked = []
    cuda = SimpleNamespace(max_memory_reserved=lambda device: asked.append(device) or 3 * GIB)
    assert TorchPeakSource("cuda:1", cuda).read() == 3 * GIB and asked == ["cuda:1"]


def test_open_sources_without_nvml_keeps_the_cpu_side_and_says_why(monkeypatch):
    def no_nvml(*args, **kwargs):
        raise FakeNvmlError("NVML Shared Library Not Found")

    monkeypatch.setattr(system_sampler, "NvmlSource", no_nvml)
    sources = open_sources(SimpleNamespace(type="cpu"), set())
    assert sources.gpus is None and sources.peak is None and sources.host is not None
    assert sources.notes == ["no GPU figures: NVML unavailable (NVML Shared Library Not Found)"]


def test_open_sources_marks_the_gpus_the_run_uses(monkeypatch):
    nvml = fake_nvml([FULL_BOARD, {**FULL_BOARD, "uuid": "GPU-cccc"}])
    monkeypatch.setattr(system_sampler, "NvmlSource", lambda: NvmlSource(nvml=nvml))
    monkeypatch.setattr(system_sampler, "torch_uuids", lambda: None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    device = SimpleNamespace(type="cuda", index=0)
    sources = open_sources(device, used_cuda_indices(device, 1, distributed=False))
    assert [g.used_by_run for g in sources.gpus.read()] == [False, True]
    assert isinstance(sources.peak, TorchPeakSource)


# --- the GPU mapping -----------------------------------------------------------------------


NVML_UUIDS = ["GPU-aaaa-1111", "GPU-bbbb-2222", "GPU-cccc-3333"]


def test_mapping_through_torchs_uuids():
    # torch sees the third and the first (CUDA_VISIBLE_DEVICES=2,0), its uuids without "GPU-"
    assert torch_to_nvml(NVML_UUIDS, ["CCCC-3333", "aaaa-1111"], "2,0") == {0: 2, 1: 0}


def test_mapping_through_cuda_visible_devices():
    assert torch_to_nvml(NVML_UUIDS, None, "2,0") == {0: 2, 1: 0}
    assert torch_to_nvml(NVML_UUIDS, None, "GPU-bbbb,GPU-aaaa-1111") == {0: 1, 1: 0}
    assert torch_to_nvml(NVML_UUIDS, None, "1,7,0") == {0: 1}  # CUDA stops at a bad entry
    assert torch_to_nvml(NVML_UUIDS, None, "") == {}  # no GPU visible
    assert torch_to_nvml(NVML_UUIDS, None, None) == {0: 0, 1: 1, 2: 2}


def test_the_gpus_a_run_uses():
    cuda = SimpleNamespace(type="cuda", index=1)
    assert used_cuda_indices(cuda, 1, distributed=False) == {1}
    assert used_cuda_indices(SimpleNamespace(type="cuda", index=0), 4, distributed=True) == {
        0,
        1,
        2,
        3,
    }
    assert used_cuda_indices(SimpleNamespace(type="cpu", index=None), 1, False) == set()


# --- cgroup limits -------------------------------------------------------------------------


def test_cgroup_v2_takes_the_tightest_limit_up_the_tree(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job_7/step_0\n")
    root = tmp_path / "fs"
    (root / "job_7" / "step_0").mkdir(parents=True)
    (root / "job_7" / "step_0" / "memory.max").write_text("max\n")
    (root / "job_7" / "memory.max").write_text(f"{8 * GIB}\n")
    assert cgroup_memory_limit(proc, root) == 8 * GIB
    (root / "job_7" / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(proc, root) is None


def test_cgroup_v1_huge_number_is_no_limit(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    leaf = tmp_path / "fs" / "memory" / "docker" / "abc"
    leaf.mkdir(parents=True)
    (leaf / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_memory_limit(proc, tmp_path / "fs") is None
    (leaf / "memory.limit_in_bytes").write_text(f"{2 * GIB}\n")
    assert cgroup_memory_limit(proc, tmp_path / "fs") == 2 * GIB
    assert cgroup_memory_limit(tmp_path / "missing", tmp_path / "fs") is None


# --- the sampler ---------------------------------------------------------------------------


def test_rows_with_a_gpu_and_the_peaks_of_the_runs_gpus_only(tmp_path):
    path = tmp_path / "system.jsonl"
    gpus = ListGpus([gpu(0, False, 100.0, 70 * GIB), gpu(1, True, 40.0, 9 * GIB)])
    sources = Sources(host=FakeHost([GIB, 3 * GIB]), gpus=gpus, cgroup_mem_limit_bytes=8 * GIB)
    clock = iter([10.0, 12.0])
    sampler = SystemSampler(path, lambda: sources, clock=lambda: next(clock))
    sampler.sample_once()
    gpus.gpus = [gpu(0, False, 100.0, 70 * GIB), gpu(1, True, 80.0, 11 * GIB)]
    sampler.sample_once()
    first, second = rows(path)
    assert first["t"] == 10.0 and second["rss_bytes"] == 3 * GIB
    assert first["cgroup_mem_limit_bytes"] == 8 * GIB and first["note"] is None
    assert [g["index"] for g in first["gpus"]] == [0, 1]
    assert set(first["gpus"][0]) >= {"index", "name", "util_percent", "mem_used_bytes"}
    peaks = sampler.peaks()
    # GPU 0 is someone else's job: neither its 100% nor its 70 GiB count
    assert (peaks.gpu_util_mean, peaks.gpu_util_peak) == (60.0, 80.0)
    assert (peaks.gpu_mem_peak_bytes, peaks.gpu_mem_source) == (11 * GIB, "nvml")
    assert peaks.peak_rss_bytes == 3 * GIB and peaks.samples == 2
    assert SystemPeaks.of([]).samples == 0


def test_torchs_peak_wins_over_nvmls(tmp_path):
    peak = SimpleNamespace(read=lambda: 5 * GIB)
    gpus = ListGpus([gpu(0, True, 50.0, 20 * GIB)])
    sources = Sources(host=FakeHost([GIB]), gpus=gpus, peak=peak)
    sampler = SystemSampler(tmp_path / "system.jsonl", lambda: sources)
    sampler.sample_once()
    peaks = sampler.peaks()
    assert (peaks.gpu_mem_peak_bytes, peaks.gpu_mem_source) == (5 * GIB, "torch")


def test_no_gpu_rows_have_an_empty_gpu_list_and_the_reason(tmp_path):
    sources = Sources(host=FakeHost([GIB]), notes=["no GPU figures: NVML sees no NVIDIA GPU"])
    sampler = SystemSampler(tmp_path / "system.jsonl", lambda: sources)
    sampler.sample_once()
    (row,) = rows(tmp_path / "system.jsonl")
    assert row["gpus"] == [] and row["note"] == "no GPU figures: NVML sees no NVIDIA GPU"
    assert row["cpu_percent"] == 150.0
    peaks = sampler.peaks()
    assert peaks.gpu_util_mean is None and peaks.gpu_mem_peak_bytes is None


def test_nvml_raising_drops_the_gpu_part_with_one_note(tmp_path):
    gpus = ListGpus([gpu(0, True, 50.0, GIB)], fail_after=1)
    sources = Sources(host=FakeHost([GIB] * 3), gpus=gpus)
    sampler = SystemSampler(tmp_path / "system.jsonl", lambda: sources)
    for _ in range(3):
        sampler.sample_once()
    first, second, third = rows(tmp_path / "system.jsonl")
    assert len(first["gpus"]) == 1 and first["note"] is None
    assert second["gpus"] == third["gpus"] == []
    assert third["note"] == "GPU figures stopped: GPU is lost"
    assert gpus.reads == 2  # dropped: never asked again
    assert third["rss_bytes"] == GIB  # the CPU side goes on


def test_sources_that_cannot_open_give_a_row_with_the_reason(tmp_path):
    def broken():
        raise OSError("psutil is broken")

    sampler = SystemSampler(tmp_path / "system.jsonl", broken)
    sampler.sample_once()
    (row,) = rows(tmp_path / "system.jsonl")
    assert row["note"] == "no system figures: psutil is broken" and row["cpu_percent"] is None


def test_the_thread_samples_until_stopped_and_ends(tmp_path):
    path = tmp_path / "system.jsonl"
    sources = Sources(host=FakeHost([GIB] * 10_000))
    sampler = SystemSampler(path, lambda: sources, interval_s=0.01).start()
    deadline = time.monotonic() + 30
    while (not path.exists() or len(rows(path)) < 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert not sampler.alive
    written = len(rows(path))
    assert written >= 2 and sampler.peaks().samples == written


class Blocking:
    """A source stuck in a call (a hung NVML) until released, or 30 s."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.callers: list[threading.Thread] = []

    def block(self) -> None:
        self.callers.append(threading.current_thread())
        self.entered.set()
        self.release.wait(30)

    def read(self) -> list[GpuSample]:
        self.block()
        return [gpu(0, True, 50.0, GIB)]

    def opened(self) -> Sources:
        self.block()
        return Sources(host=FakeHost([GIB] * 100))


@pytest.mark.parametrize("stuck_in", ["read", "open"])
def test_a_stuck_source_holds_the_runs_end_up_no_longer_than_the_stop_timeout(tmp_path, stuck_in):
    source = Blocking()
    path = tmp_path / "system.jsonl"
    opener = (
        source.opened if stuck_in == "open" else lambda: Sources(host=FakeHost([GIB]), gpus=source)
    )
    timeout = 2.0
    sampler = SystemSampler(path, opener, interval_s=0.01, stop_timeout_s=timeout).start()
    assert source.entered.wait(30)
    began = time.monotonic()
    peaks = sampler.finish()  # the run writer's call at the run's end, on the training thread
    finished = time.monotonic()
    sampler.stop()  # launch.py's second stop: it does not wait for the stuck thread again
    stopped = time.monotonic()
    # bounds, with room for a loaded machine: the source itself would hold for 30 s
    assert finished - began < timeout + 5.0 and stopped - finished < timeout / 2
    assert sampler.alive and peaks.samples == 0
    source.release.set()  # the call returns: the thread ends, writing and counting nothing
    sampler._thread.join(30)
    assert not sampler.alive
    assert not path.exists() and sampler.peaks().samples == 0  # the summary's count holds
    assert source.callers and threading.current_thread() not in source.callers


def test_a_resumed_runs_peaks_count_the_earlier_sessions_samples(tmp_path):
    path = tmp_path / "system.jsonl"
    earlier = SystemSample(1.0, 90.0, 7 * GIB, None, None)
    path.write_text(json.dumps(earlier.to_row()) + "\n" + '{"t": 2.0, "rss_by')  # crashed
    sampler = SystemSampler(path, lambda: Sources(host=FakeHost([GIB] * 10_000))).start()
    peaks = sampler.finish()
    assert not sampler.alive
    assert peaks.samples == 2 and peaks.peak_rss_bytes == 7 * GIB  # the earlier and the last
    # the new row starts a line of its own: the cut one does not swallow it
    assert [s.rss_bytes for s in Run(tmp_path).system()] == [7 * GIB, GIB]


def test_an_unwritable_file_stops_the_writing_not_the_sampling(tmp_path):
    sources = Sources(host=FakeHost([GIB, 2 * GIB]))
    sampler = SystemSampler(tmp_path / "gone" / "system.jsonl", lambda: sources)
    sampler.sample_once()
    sampler.sample_once()
    assert sampler.peaks().peak_rss_bytes == 2 * GIB


def test_which_process_samples_and_where_under_torchrun(tmp_path):
    """Local rank 0 of each node samples; rank 0 writes system.jsonl, another node's local
    rank 0 system-<host>.jsonl when the run folder is there on its node."""
    cpu = SimpleNamespace(type="cpu", index=None)

    def topology(rank, local_rank):
        return SimpleNamespace(
            rank=rank, local_rank=local_rank, is_main=rank == 0, local_world_size=2, active=True
        )

    assert start_sampler(tmp_path, topology(1, 1), cpu) is None
    assert start_sampler(tmp_path / "not-on-this-node", topology(2, 0), cpu) is None
    for rank, name in ((0, "system.jsonl"), (2, f"system-{socket.gethostname()}.jsonl")):
        sampler = start_sampler(tmp_path, topology(rank, 0), cpu)
        sampler.finish()
        assert sampler.path == tmp_path / name and len(rows(sampler.path)) == 1


# --- reading back --------------------------------------------------------------------------


def test_system_jsonl_read_back_with_a_truncated_last_line(tmp_path):
    run = Run(tmp_path)
    samples = [
        SystemSample(1.0, 90.0, GIB, 4 * GIB, 16 * GIB, gpus=(gpu(0, True, 30.0, GIB),)),
        SystemSample(3.0, 110.0, 2 * GIB, 4 * GIB, 16 * GIB, gpus=(gpu(0, True, 70.0, 3 * GIB),)),
    ]
    text = "".join(json.dumps(s.to_row()) + "\n" for s in samples)
    run.system_path.write_text(text + '{"t": 5.0, "cpu_percent": 1')
    assert run.system() == samples
    peaks = run.system_peaks({})
    assert (peaks.samples, peaks.peak_rss_bytes, peaks.gpu_util_mean) == (2, 2 * GIB, 50.0)
    # a summary that recorded peaks wins over the file
    recorded = {"system": {**peaks.to_record(), "peak_rss_bytes": 9 * GIB}}
    assert run.system_peaks(recorded).peak_rss_bytes == 9 * GIB


def test_a_row_from_a_hand_edit_is_read_as_far_as_it_goes():
    row = {"t": 2, "cpu_percent": "lots", "gpus": [{"index": 0, "util_percent": 5}, {"x": 1}]}
    sample = SystemSample.from_row(row)
    assert sample.cpu_percent is None and len(sample.gpus) == 1
    assert sample.gpus[0].util_percent == 5.0 and not sample.gpus[0].used_by_run
    assert SystemSample.from_row({"cpu_percent": 3}) is None


# --- inside a run --------------------------------------------------------------------------


def test_a_run_writes_system_jsonl_and_its_peaks_and_the_sampler_ends(tiny_data, tmp_path):
    run, ended = start_run(
        tiny_config(epochs=1),
        preset="test",
        overrides={},
        data_dir=tiny_data,
        runs_dir=tmp_path / "runs",
    )
    assert ended.status == "completed"
    samples = run.system()
    assert samples and all(s.rss_bytes and s.rss_bytes > 0 for s in samples)
    recorded = run.summary()["system"]
    assert recorded["samples"] == len(samples)
    assert recorded["peak_rss_bytes"] == max(s.rss_bytes for s in samples)
    assert not [t for t in threading.enumerate() if t.name == "system-sampler"]
