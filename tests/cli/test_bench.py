"""`tui-trainer bench` on the tiny set: it runs end to end and prints every figure (no timing
assertions: speed is what the bench reports, not what tests check)."""

from typer.testing import CliRunner

from tests.support.runs import stand_in_imagenet
from tui_trainer.cli.app import app

TINY = ["--image-size", "64", "--batch-size", "8", "--compute-steps", "1", "--device", "cpu"]
TINY += ["--set", "precision=fp32", "--set", "threads=2"]


def test_bench_prints_compute_engine_reference_and_ratios(tiny_data):
    args = ["bench", "scratch", "--data", str(tiny_data), "--workers", "1", *TINY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for text in (
        "(a) pure compute",
        "fp32: train",
        "(b) engine",
        "engine epoch 1:",
        "(c) reference loop",
        "reference epoch 1:",
        "ratios: engine epoch",
    ):
        assert text in result.output, text
    assert "fast paths: decoded_image_cache, channels_last" in result.output


def test_bench_of_a_frozen_preset_uses_cached_features(tiny_data):
    stand_in_imagenet("alexnet")
    args = ["bench", "freeze-conv", "--data", str(tiny_data), "--ref-epochs", "0", *TINY]
    result = CliRunner().invoke(app, [*args, "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "frozen_features" in result.output and "computing frozen features" in result.output
    assert "engine epoch 2:" in result.output and "(c)" not in result.output


def test_bench_bad_preset_is_a_one_line_error():
    result = CliRunner().invoke(app, ["bench", "nope"])
    assert result.exit_code == 2 and "unknown preset 'nope'" in result.output
