"""The report's tables from a runs folder written by hand, with known summaries."""

import csv
import io
import json
from pathlib import Path

import pytest

from tests.support.runs import fake_run
from tui_trainer.config import load_preset
from tui_trainer.studies.report import build_report, protocol_of
from tui_trainer.studies.report_render import render

QUICK = {"classes": 5, "image_size": 64, "resize": 72}


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    runs = tmp_path / "runs"
    fake_run(
        runs,
        "20240101-000001-scratch",
        "scratch",
        "completed",
        {"max_val_acc": 0.45, "test_acc": 0.47},
    )
    # the same row again, later: the later run wins
    fake_run(
        runs,
        "20240101-000002-scratch",
        "scratch",
        "completed",
        {"max_val_acc": 0.48, "test_acc": 0.5},
    )
    # the same row on a quick protocol, later still: never beats a full-protocol run
    fake_run(
        runs,
        "20240101-000003-quick",
        "scratch",
        "completed",
        {"max_val_acc": 0.9, "test_acc": 0.9},
        **QUICK,
    )
    # a row with only a quick run: a cell only with --any-protocol
    fake_run(
        runs,
        "20240101-000004-quick-lr",
        "scratch",
        "completed",
        {"max_val_acc": 0.2, "test_acc": 0.1},
        lr=0.001,
        **QUICK,
    )
    fake_run(runs, "20240101-000005-failed", "finetune", "failed", {"max_val_acc": 0.99})
    fake_run(
        runs,
        "20240101-000006-finetune",
        "finetune",
        "completed",
        {"max_val_acc": 0.851, "test_acc": 0.83, "final_train_loss": 0.0412},
    )
    fake_run(
        runs,
        "20240101-000007-freeze-conv",
        "freeze-conv",
        "completed",
        {"max_val_acc": 0.86, "test_acc": 0.845, "final_train_loss": 0.03},
    )
    fake_run(
        runs,
        "20240101-000008-cs-hf",
        "aug-cs-hf",
        "completed",
        {"test_acc": 0.84, "accuracy_gap": 0.1, "loss_gap": 0.5},
    )
    fake_run(runs, "20240101-000009-r18f", "resnet18-freeze", "completed", {"test_acc": 0.9})
    # seed and momentum are not part of a row's match: this run counts for the fine-tune LR table
    fake_run(
        runs,
        "20240101-000010-ft-lr",
        "finetune",
        "completed",
        {"max_val_acc": 0.8},
        lr=0.001,
        epochs=30,
        step_size=20,
        seed=3,
    )
    return runs


EXPECTED_HEAD = (
    "# Results\n\nEach cell: the completed runs in `{runs}` on the report's protocol "
    "(quick runs left out: --any-protocol includes them), repeats over seeds as mean ± std "
    "(n seeds; n=2 of 3: a seed failed or is running); one run as its number; — = no run.\n"
)
EXPECTED_TABLES = """
## Table 1: AlexNet trained from scratch

| LR | NUM_EPOCHS | STEP_SIZE | GAMMA | MAX_VAL_ACC | TEST_ACC | RUN |
| --- | --- | --- | --- | --- | --- | --- |
| 0.001 | 30 | 20 | 0.1 | — | — | — |
| 0.005 | 20 | 10 | 0.1 | — | — | — |
| 0.01 | 30 | 15 | 0.1 | — | — | — |
| 0.05 | 30 | 20 | 0.1 | 0.480 | 0.500 | 20240101-000002-scratch |
| 0.1 | 30 | 5 | 0.5 | — | — | — |
| 0.05 | 40 | 20 | 0.1 | — | — | — |

## Section 3.1: fine-tuning all of ImageNet AlexNet

| LR | NUM_EPOCHS | STEP_SIZE | GAMMA | MAX_VAL_ACC | RUN |
| --- | --- | --- | --- | --- | --- |
| 0.001 | 30 | 20 | 0.1 | 0.800 | 20240101-000010-ft-lr |
| 0.005 | 20 | 10 | 0.1 | 0.851 | 20240101-000006-finetune |
| 0.0005 | 40 | 30 | 0.5 | — | — |

## Table 2: transfer-learning policies

| POLICY | FINAL_TRAIN_LOSS | TEST_ACCURACY | RUN |
| --- | --- | --- | --- |
| train the entire model | 0.041 | 0.830 | 20240101-000006-finetune |
| freeze convolutional layers | 0.030 | 0.845 | 20240101-000007-freeze-conv |
| freeze fully connected layers | — | — | — |

## Table 3: data augmentation

| AUG_TYPE | TEST_ACCURACY | ACCURACY_GAP | LOSS_GAP | RUN |
| --- | --- | --- | --- | --- |
| CS-HF | 0.840 | 0.100 | 0.500 | 20240101-000008-cs-hf |
| H-RP | — | — | — | — |
| B-GS-R | — | — | — | — |

## Table 4: other networks (ImageNet weights, no augmentation)

| NET | TEST_ACCURACY | TEST_ACCURACY_FREEZE | RUN |
| --- | --- | --- | --- |
| AlexNet | 0.830 | 0.845 | 20240101-000006-finetune, 20240101-000007-freeze-conv |
| Resnet18 | — | 0.900 | 20240101-000009-r18f |
| Resnet50 | — | — | — |
"""


def test_markdown_tables_match_the_expected_text(runs_dir):
    text = render(build_report(runs_dir), "md")
    assert text == EXPECTED_HEAD.format(runs=runs_dir) + EXPECTED_TABLES


def test_compare_paper_and_any_protocol(runs_dir):
    text = render(build_report(runs_dir, any_protocol=True), "md", compare_paper=True)
    lines = text.splitlines()
    assert (
        "| LR | NUM_EPOCHS | STEP_SIZE | GAMMA | MAX_VAL_ACC | MAX_VAL_ACC (paper) | TEST_ACC "
        "| TEST_ACC (paper) | RUN | PROTOCOL |"
    ) in lines
    # the quick run fills the row that has nothing else, and says so
    # ...beside the paper's number, and where ours lie against it
    assert (
        "| 0.001 | 30 | 20 | 0.1 | 0.200 | 0.16 (above) | 0.100 | 0.09 (above) "
        "| 20240101-000004-quick-lr | classes=5 image_size=64 resize=72 |"
    ) in lines
    # a full-protocol run still wins over a later quick one
    assert (
        "| 0.05 | 30 | 20 | 0.1 | 0.480 | 0.47 (above) | 0.500 | 0.49 (above) "
        "| 20240101-000002-scratch | full |"
    ) in lines
    assert "| Resnet50 | — | 0.91 | — | 0.93 | — | — |" in lines


def test_csv_has_one_line_per_cell(runs_dir):
    rows = list(csv.DictReader(io.StringIO(render(build_report(runs_dir), "csv", True))))
    assert len(rows) == 6 * 2 + 3 + 3 * 2 + 3 * 3 + 3 * 2
    first = rows[0]
    assert first == {
        "table": "scratch",
        "row": "LR=0.001 NUM_EPOCHS=30 STEP_SIZE=20 GAMMA=0.1",
        "column": "MAX_VAL_ACC",
        "value": "",
        "run": "",
        "protocol": "",
        "paper": "0.16",
        "std": "",
        "n": "0",
        "of": "0",
        "low": "",
        "high": "",
        "precision": "",
        "runs": "",
        "seeds": "",
        "other_groups": "0",
        "vs_paper": "",
    }
    alex = [r for r in rows if r["table"] == "backbones" and r["row"] == "AlexNet"]
    assert [(r["column"], r["value"], r["run"]) for r in alex] == [
        ("TEST_ACCURACY", "0.83", "20240101-000006-finetune"),
        ("TEST_ACCURACY_FREEZE", "0.845", "20240101-000007-freeze-conv"),
    ]


def test_json_keeps_numbers_and_runs(runs_dir):
    data = json.loads(render(build_report(runs_dir), "json", compare_paper=True))
    assert data["protocol"] == "full" and [t["key"] for t in data["tables"]] == [
        "scratch",
        "finetune",
        "policies",
        "augmentation",
        "backbones",
    ]
    row = data["tables"][2]["rows"][0]
    assert row["label"] == "train the entire model"
    # one run: its figure, a spread of one, and the run behind it (the failed run of the same
    # config and seed before it is replaced by the completed one)
    assert row["cells"]["TEST_ACCURACY"] == {
        "value": 0.83,
        "run": "20240101-000006-finetune",
        "protocol": "full",
        "paper": 0.82,
        "vs_paper": "above",
        "std": None,
        "n": 1,
        "of": 1,
        "low": 0.83,
        "high": 0.83,
        "precision": None,
        "other_groups": 0,
        "runs": [
            {"run": "20240101-000006-finetune", "seed": 42, "status": "completed", "value": 0.83}
        ],
    }


def test_an_empty_runs_folder_gives_empty_tables(tmp_path):
    report = build_report(tmp_path)
    assert all(c.value is None for t in report.tables for r in t.rows for c in r.cells)


def test_protocol_names_the_deviations():
    assert protocol_of(load_preset("scratch").config.to_dict()) == "full"
    cfg = load_preset("scratch").config.with_overrides({"classes": 5, "batch_size": 8})
    assert protocol_of(cfg.to_dict()) == "classes=5 batch_size=8"
