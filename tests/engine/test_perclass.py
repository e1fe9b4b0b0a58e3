"""Per-class test results: the tallies, and what a tiny run stores and `show` prints."""

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.support.runs import tiny_config
from tui_trainer.cli.app import app
from tui_trainer.runs.launch import start_run
from tui_trainer.runs.results import (
    compute_results,
    confused_pairs,
    load_test_results,
    misclassified_images,
    worst_classes,
)
from tui_trainer.train import preparation
from tui_trainer.train.models import build_model


def test_tallies_confusions_and_misclassified_images():
    classes = ["ant", "bee", "cat"]
    labels = [0, 0, 0, 1, 1, 2, 2, 2]
    preds = [0, 1, 1, 1, 0, 2, 2, 1]
    paths = [f"{classes[t]}/{i}.jpg" for i, t in enumerate(labels)]
    r = compute_results(classes, labels, preds, paths, Path("/data"))
    assert r["confusion"] == [[1, 2, 0], [1, 1, 0], [0, 1, 2]]
    assert [(c["correct"], c["total"]) for c in r["per_class"]] == [(1, 3), (1, 2), (2, 3)]
    assert r["accuracy"] == 4 / 8
    assert [(c.name, c.correct, c.total) for c in worst_classes(r, 2)] == [
        ("ant", 1, 3),
        ("bee", 1, 2),
    ]
    assert confused_pairs(r) == [("ant", "bee", 2), ("bee", "ant", 1), ("cat", "bee", 1)]
    assert misclassified_images(r)[0] == (Path("/data/ant/1.jpg"), "ant", "bee")
    assert len(misclassified_images(r)) == 4


def test_a_tiny_run_stores_per_class_counts_that_add_up_from_one_test_pass(
    tiny_data, tmp_path, monkeypatch
):
    evaluated = []  # images per forward call in eval mode

    def count(module, inputs, output) -> None:
        if not module.training:
            evaluated.append(len(output))

    def counting_model(*args, **kwargs):
        model = build_model(*args, **kwargs)
        model.register_forward_hook(count)
        return model

    monkeypatch.setattr(preparation, "build_model", counting_model)
    runs_dir = tmp_path / "runs"
    run, ended = start_run(
        tiny_config(epochs=1),
        preset="t",
        overrides={},
        data_dir=tiny_data,
        runs_dir=runs_dir,
    )
    assert ended.status == "completed"
    s = ended.summary  # epoch 1 evaluates train and val; the end, test: each image once
    assert sum(evaluated) == s["num_train"] + s["num_val"] + s["num_test"]
    results = load_test_results(run.path)
    assert results is not None
    assert json.loads((run.path / "test_results.json").read_text()) == results
    assert results["classes"] == run.meta()["classes"] == ["circle", "square", "stripes"]
    correct = sum(c["correct"] for c in results["per_class"])
    total = sum(c["total"] for c in results["per_class"])
    assert total == ended.summary["num_test"]
    assert correct / total == results["accuracy"] == ended.summary["test_acc"]
    assert [sum(row) for row in results["confusion"]] == [c["total"] for c in results["per_class"]]
    assert len(results["misclassified"]) == total - correct
    for path, true, pred in misclassified_images(results):
        assert path.is_absolute() and path.is_file() and path.parent.name == true != pred

    runner = CliRunner()
    shown = runner.invoke(app, ["show", run.id, "--runs-dir", str(runs_dir)])
    assert shown.exit_code == 0, shown.output
    assert "worst classes (of 3, test accuracy):" in shown.output
    listed = runner.invoke(app, ["show", run.id, "--runs-dir", str(runs_dir), "--misclassified"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[-1] == f"{total - correct} of {total} test images misclassified"
    assert len(lines) == total - correct + 1
