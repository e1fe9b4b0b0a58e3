"""`tui-trainer bench` on the tiny set: it runs end to end and prints every figure (no timing
assertions: speed is what the bench reports, not what tests check)."""

import re

from typer.testing import CliRunner

from tests.support.runs import stand_in_imagenet
from tui_trainer.cli.app import app

TINY = ["--image-size", "64", "--batch-size", "8", "--compute-steps", "1", "--device", "cpu"]
TINY += ["--set", "precision=fp32", "--set", "threads=2", "--no-probe"]


def test_bench_prints_compute_engine_reference_and_ratios(tiny_data):
    args = ["bench", "scratch", "--data", str(tiny_data), "--workers", "1", *TINY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for text in (
        "(a) pure compute, batch 8 (eval 8)",
        "choice: fp32 (forced), ",
        "precision check: no probe to compare with",
        "(b) engine",
        "engine epoch 1:",
        "(c) reference loop",
        "reference epoch 1:",
        "ratios: engine epoch",
    ):
        assert text in result.output, text
    assert re.search(r"^  fp32 +\d+\.\d +\d+\.\d +\d+\.\d  1\.00x fp32$", result.output, re.M)
    assert "fast paths: decoded_image_cache, channels_last" in result.output
    assert "precision probe" not in result.output  # forced, and --no-probe


def test_bench_prints_the_probe_table_and_uses_its_choice_for_auto(tiny_data):
    args = ["bench", "scratch", "--data", str(tiny_data), "--ref-epochs", "0", "--device", "cpu"]
    args += ["--set", "model=resnet18", "--image-size", "32", "--batch-size", "2"]
    args += ["--compute-steps", "1", "--probe-cap", "0.5", "--set", "threads=1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = lines.index(next(line for line in lines if line.startswith("precision probe (")))
    assert "measured in" in lines[table] and "resnet18 freeze=none, 32 px, batch 2" in lines[table]
    assert lines[table + 1].split()[:2] == ["precision", "train"]
    assert [line.split()[0] for line in lines[table + 2 : table + 4]] == ["fp32", "bf16"]
    choice = lines[table + 4].split()[1]
    assert choice in ("fp32", "bf16") and f"precision {choice}," in result.output
    assert lines[table + 5] == "  timed at batch 2 (eval 2): the run's"
    assert f"choice: {choice} (precision=auto)" in result.output
    # the first epoch against the probe's prediction (tiny epochs: either verdict)
    assert re.search(
        r"  precision check: epoch 1 [\d.]+ img/s, probe [\d.]+ \(" + choice, result.output
    )


def test_bench_refuses_a_cap_that_is_not_positive():
    result = CliRunner().invoke(app, ["bench", "scratch", "--probe-cap", "0"])
    assert result.exit_code == 2 and "--probe-cap 0.0 is not a positive number" in result.output


def test_bench_of_a_frozen_preset_uses_cached_features(tiny_data):
    stand_in_imagenet("alexnet")
    args = ["bench", "freeze-conv", "--data", str(tiny_data), "--ref-epochs", "0", *TINY]
    result = CliRunner().invoke(app, [*args, "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "frozen_features" in result.output and "computing frozen features" in result.output
    assert "engine epoch 2:" in result.output and "(c)" not in result.output
    # an epoch's wall time holds its train + eval and the previous epoch's checkpoint hand-over
    epochs = re.findall(r"engine epoch \d+: (\d+\.\d) s \(train \+ eval (\d+\.\d)\)", result.output)
    assert len(epochs) == 2
    assert all(float(wall) >= float(inner) - 0.1 for wall, inner in epochs)


def test_bench_bad_preset_is_a_one_line_error():
    result = CliRunner().invoke(app, ["bench", "nope"])
    assert result.exit_code == 2 and "unknown preset 'nope'" in result.output


def test_bench_compares_bf16_where_it_is_native_or_the_probe_could_time_it(monkeypatch):
    from types import SimpleNamespace

    import torch

    from tui_trainer.bench import runner
    from tui_trainer.train.precision_probe import ProbeResult
    from tui_trainer.train.precision_timing import CandidateRate

    prep = SimpleNamespace(device=torch.device("cpu"), precision="fp32")
    capped = (CandidateRate("fp32", 10.0, 30.0), CandidateRate("bf16", 1.0, None, capped=True))
    probed = ProbeResult(None, capped, "fp32", False, 0.0)
    monkeypatch.setattr(runner, "cpu_flags", lambda: {"avx2"})  # emulated bf16: minutes a batch
    assert runner._compared(prep, probed) == ["fp32"]
    assert runner._compared(prep, None) == ["fp32"]
    monkeypatch.setattr(runner, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert runner._compared(prep, probed) == ["fp32", "bf16"]  # capped under load: still shown
    usable = ProbeResult(None, (capped[0], CandidateRate("bf16", 20.0, 60.0)), "bf16", False, 0.0)
    monkeypatch.setattr(runner, "cpu_flags", lambda: {"avx2"})
    assert runner._compared(prep, usable) == ["fp32", "bf16"]
