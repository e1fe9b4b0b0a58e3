"""The real Caltech-101 (../shared/caltech101 or $TUI_TRAINER_DATA): must run in CI."""

import subprocess
import sys

from tui_trainer.runs.store import list_runs


def test_cli_scratch_run_on_five_real_classes_leaves_a_complete_folder(real_data, tmp_path):
    runs_dir = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "tui_trainer",
        "run",
        "scratch",
        "--data",
        str(real_data),
        "--runs-dir",
        str(runs_dir),
        "--set",
        "epochs=2",
        "--set",
        "classes=5",
        "--set",
        "image_size=64",
        "--set",
        "resize=72",
        "--set",
        "precision=fp32",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = list_runs(runs_dir)
    meta, summary = run.meta(), run.summary()
    assert meta["split_source"] == "files"
    assert meta["classes"] == ["Faces", "Faces_easy", "Leopards", "Motorbikes", "accordion"]
    assert summary["status"] == "completed" and summary["epochs_done"] == 2
    assert summary["num_test"] == 642 and summary["num_train"] + summary["num_val"] == 1281
    assert summary["skipped_images"] == 0 and 0 < summary["test_acc"] <= 1
    # 640 training images at batch 256: scratch drops the last 128 (last_batch=drop)
    assert len(run.epochs()) == 2 and len(run.steps()) == 2 * 2
    assert run.best_path.is_file() and not run.last_path.exists()  # completed: best.pt only
    assert "epoch 2/2" in proc.stdout  # plain lines when not a terminal
