"""The Typer CLI through CliRunner: every command, exit codes, and bad input leaving nothing."""

import json

from tests.support.runs import cache_entries, fake_run, invoke, stop_decoding_after
from tui_trainer.cli import listen
from tui_trainer.runs.store import Run
from tui_trainer.train.system_metrics import GpuSample, SystemSample, format_bytes

TINY = [
    "--set",
    "image_size=64",
    "--set",
    "resize=72",
    "--set",
    "batch_size=8",
    "--set",
    "precision=fp32",
    "--set",
    "device=cpu",
]


def test_presets_lists_every_preset():
    result = invoke("presets")
    assert result.exit_code == 0
    for name in ("scratch", "finetune", "freeze-conv", "aug-h-rp", "resnet50-freeze"):
        assert name in result.output


def test_run_runs_and_show_on_the_tiny_set(tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    result = invoke(
        "run",
        "scratch",
        "--data",
        tiny_data,
        "--runs-dir",
        runs_dir,
        "--set",
        "epochs=1",
        "--set",
        "lr=0.01",
        *TINY,
        "--name",
        "tiny",
    )
    assert result.exit_code == 0, result.output
    assert "epoch 1/1" in result.output and "status: completed" in result.output
    (folder,) = runs_dir.iterdir()
    assert folder.name.endswith("-tiny") and f"run folder: {folder}" in result.output
    listed = invoke("runs", "--runs-dir", runs_dir, "--json")
    rows = json.loads(listed.output)
    assert [r["id"] for r in rows] == [folder.name]
    assert rows[0]["status"] == "completed" and rows[0]["lr"] == 0.01
    table = invoke("runs", "--runs-dir", runs_dir)
    assert table.exit_code == 0 and "completed" in table.output
    shown = invoke("show", folder.name[-8:], "--runs-dir", runs_dir)
    assert shown.exit_code == 0, shown.output
    assert "Training loss per step" in shown.output and "Accuracy per epoch" in shown.output
    assert "lr=0.01" in shown.output
    # the sampler's peaks, as the summary recorded them; no GPU on this machine's runs
    peak_rss = run_summary(folder)["system"]["peak_rss_bytes"]
    assert f"peak_rss: {format_bytes(peak_rss)}" in shown.output
    assert "from system.jsonl" not in shown.output


def test_diverged_run_exits_1(tiny_data, tmp_path):
    result = invoke(
        "run",
        "scratch",
        "--data",
        tiny_data,
        "--runs-dir",
        tmp_path / "runs",
        "--set",
        "epochs=3",
        "--set",
        "lr=1e6",
        "--set",
        "weight_decay=0",
        *TINY,
    )
    assert result.exit_code == 1 and "diverged" in result.output


def test_a_stop_before_training_exits_130_and_writes_nothing(tiny_data, tmp_path, monkeypatch):
    stops = []  # the run's stop event, which Ctrl-C or SIGTERM would set
    monkeypatch.setattr(listen, "stop_on_signals", lambda s: stops.append(s) or (lambda: None))
    stop_decoding_after(monkeypatch, 5, lambda: stops[0].set())
    runs_dir = tmp_path / "runs"
    result = invoke(
        "run", "scratch", "--data", tiny_data, "--runs-dir", runs_dir, *TINY, "--set", "threads=1"
    )
    assert result.exit_code == 130, result.output
    assert result.output.splitlines() == [
        "status: interrupted (stopped after decoding 5/38 images: no run folder was created)"
    ]
    assert list(runs_dir.iterdir()) == [] and cache_entries() == []


def test_data_check_reports_classes_modes_and_unreadable(tiny_data):
    result = invoke("data", "check", "--data", tiny_data)
    assert result.exit_code == 1  # one corrupt file
    assert "classes:      3" in result.output and "unreadable:   1" in result.output
    assert "square/img_corrupt.jpg" in result.output and "L 1" in result.output


def test_data_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, *a, **k):
            raise OSError("Network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "Caltech101", Offline)
    result = invoke("data", "download", "--data", tmp_path / "caltech101")
    assert result.exit_code == 2
    assert "could not download Caltech-101" in result.output and "unreachable" in result.output


def test_a_run_message_with_brackets_prints_literally(capsys):
    from tui_trainer.cli.common import print_summary

    print_summary("failed", {}, "RuntimeError: [/src/pair.cc:561] closed by peer [127.0.0.1]:3497")
    assert "(RuntimeError: [/src/pair.cc:561] closed by peer [127.0.0.1]:3497)" in (
        capsys.readouterr().out
    )


def run_summary(folder) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _gpu(index: int, used: bool, util: float, mem_gib: int) -> GpuSample:
    gib = 1 << 30
    return GpuSample(index, None, "board", used, util, mem_gib * gib, 80 * gib, None, None)


def test_show_computes_system_peaks_of_a_crashed_run_from_system_jsonl(tmp_path):
    runs_dir = tmp_path / "runs"
    fake_run(runs_dir, "20240101-100000-scratch", "scratch", "running", {"pid": 0})
    run = Run(runs_dir / "20240101-100000-scratch")
    gib = 1 << 30
    other_job = _gpu(1, False, 99.0, 70)
    rows = [
        SystemSample(1.0, 150.0, 2 * gib, None, None, gpus=(_gpu(0, True, 40.0, 9), other_job)),
        SystemSample(3.0, 150.0, 3 * gib, None, None, gpus=(_gpu(0, True, 80.0, 11), other_job)),
    ]
    run.system_path.write_text("".join(json.dumps(r.to_row()) + "\n" for r in rows) + '{"t": 5')
    shown = invoke("show", run.id, "--runs-dir", runs_dir)
    assert shown.exit_code == 0, shown.output
    assert "status: crashed" in shown.output
    assert "system: 2 samples (from system.jsonl: the summary has none yet)" in shown.output
    assert "peak_rss: 3.0 GiB" in shown.output
    # GPU 1 is another job's: its 99% and 70 GiB are not the run's
    assert "gpu_util: mean 60%, peak 80%" in shown.output
    assert "peak_gpu_mem: 11.0 GiB (NVML, whole GPU)" in shown.output


def test_show_prints_the_peaks_the_summary_recorded(tmp_path):
    runs_dir = tmp_path / "runs"
    system = {"samples": 9, "peak_rss_bytes": 1 << 30, "mean_cpu_percent": 95.0,
              "gpu_util_mean": 71.5, "gpu_util_peak": 99.0, "gpu_mem_peak_bytes": 5 << 30,
              "gpu_mem_source": "torch"}  # fmt: skip
    fake_run(runs_dir, "20240101-100000-scratch", "scratch", "completed", {"system": system})
    shown = invoke("show", "20240101-100000-scratch", "--runs-dir", runs_dir)
    assert shown.exit_code == 0, shown.output
    assert "system: 9 samples\n" in shown.output and "mean_cpu: 95% (of one core)" in shown.output
    assert "gpu_util: mean 72%, peak 99%" in shown.output
    assert "peak_gpu_mem: 5.0 GiB (torch's reserved)" in shown.output
