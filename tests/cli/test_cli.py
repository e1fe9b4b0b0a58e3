"""The Typer CLI through CliRunner: every command, exit codes, and bad input leaving nothing."""

import json

from tests.support.runs import cache_entries, invoke, stop_decoding_after
from tui_trainer.cli import listen

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
