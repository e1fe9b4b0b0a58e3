"""`tui-trainer reference-run`: the plain loop's full run, headless, on a tiny real subset."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.support.real_subset import real_subset
from tui_trainer.cli.app import app

QUICK = ["--set", "epochs=1", "--set", "image_size=64", "--set", "resize=72"]
QUICK += ["--set", "batch_size=8", "--set", "precision=fp32", "--workers", "0"]


def test_reference_run_prints_epochs_and_a_sane_result(real_data, tmp_path):
    data_dir = real_subset(real_data, tmp_path / "subset", classes=3, per_class=16)
    out_file = tmp_path / "result.json"
    args = ["reference-run", "scratch", "--data", str(data_dir), "--seed", "1"]
    result = CliRunner().invoke(app, [*args, *QUICK, "--out", str(out_file)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("epoch 1/1  step loss ")
    final = json.loads(lines[-1])
    assert final["preset"] == "scratch" and final["seed"] == 1
    assert final["precision"] == "fp32" and final["best_epoch"] == 1
    (epoch,) = final["epochs"]
    assert final["max_val_acc"] == epoch["val_acc"]
    for key in ("train_acc", "val_acc"):
        assert 0 <= epoch[key] <= 1
    assert 0 <= final["test_acc"] <= 1 and final["test_loss"] > 0
    # scratch drops the last partial batch: 16 training images at batch 8 are two steps
    assert len(epoch["step_losses"]) == 2
    written = json.loads(out_file.read_text())
    assert written["result"] == {k: v for k, v in final.items() if k != "preset"}
    assert written["config"]["last_batch"] == "drop" and written["config"]["seed"] == 1
    assert not (tmp_path / "runs").exists()  # nothing in the runs folder


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "lr=fast"], "lr='fast' is not a number"),
        (["--set", "augment=h-rp"], "the plain loop has no augmentation"),
        (["--set", "precision=fp16"], "the plain loop runs fp32 or bf16"),
        (["--out", "/nonexistent/folder/result.json"], "does not exist: create it"),
    ],
)
def test_reference_run_refuses_bad_options_in_one_line(tmp_path, extra, message):
    result = CliRunner().invoke(app, ["reference-run", "scratch", "--data", str(tmp_path), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1


def test_reference_run_refuses_an_unknown_preset(tmp_path):
    result = CliRunner().invoke(app, ["reference-run", "nope", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "unknown preset 'nope'" in result.output
