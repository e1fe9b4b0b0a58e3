"""Report cells over seeds: mean ± std (n) of one group of repeats, the runs behind it, the
expected count when a seed failed or is running, groups by precision, and the paper's number."""

import csv
import io
import json
import os
import socket
from pathlib import Path

import pytest

from tui_trainer.config import load_preset
from tui_trainer.files import write_json_atomic
from tui_trainer.studies.report import build_report
from tui_trainer.studies.report_render import render

ROW = 3  # Table 1's lr 0.05 / 30 / 20 / 0.1 row: the scratch preset, the report's 0.49


def seeded_run(runs: Path, run_id: str, seed: int, status: str, test_acc=None, **extra):
    """A scratch run at `seed`, resolved to fp32 unless `precision` says otherwise."""
    precision = extra.pop("precision", "fp32")
    folder = runs / run_id
    folder.mkdir(parents=True)
    config = load_preset("scratch").config.with_overrides({"seed": seed, **extra})
    meta = {"config": config.to_dict(), "preset": "scratch", "precision": precision}
    write_json_atomic(folder / "config.json", meta)
    summary = {"status": status, "max_val_acc": test_acc, "test_acc": test_acc}
    if status == "running":  # held by this live process: really running
        summary |= {"pid": os.getpid(), "host": socket.gethostname()}
    write_json_atomic(folder / "summary.json", summary)


def scratch_cell(runs: Path, column: int = 1):
    return build_report(runs).tables[0].rows[ROW].cells[column]


def test_three_seeds_make_one_cell_with_their_spread(tmp_path):
    runs = tmp_path / "runs"
    seeded_run(runs, "20240101-000001-s42", 42, "completed", 0.38)
    seeded_run(runs, "20240101-000002-s0", 0, "completed", 0.50)
    seeded_run(runs, "20240101-000003-s1", 1, "completed", 0.44)
    cell = scratch_cell(runs)
    assert cell.value == pytest.approx(0.44) and cell.spread.std == pytest.approx(0.06)
    assert cell.text() == "0.440 ± 0.060 (n=3)"
    assert [(r.seed, r.value) for r in cell.runs] == [(42, 0.38), (0, 0.50), (1, 0.44)]
    assert cell.run_id == "20240101-000003-s1" and cell.precision == "fp32"
    assert cell.against_paper() == "within"  # 0.49 lies inside [0.38, 0.50]
    md = render(build_report(runs), "md", compare_paper=True)
    assert (
        "| 0.05 | 30 | 20 | 0.1 | 0.440 ± 0.060 (n=3) | 0.47 (within) | 0.440 ± 0.060 (n=3) "
        "| 0.49 (within) | 20240101-000001-s42, 20240101-000002-s0, 20240101-000003-s1 |"
    ) in md.splitlines()


@pytest.mark.parametrize("unfinished", ["failed", "running"])
def test_a_failed_or_running_seed_counts_as_expected_but_adds_no_figure(tmp_path, unfinished):
    runs = tmp_path / "runs"
    seeded_run(runs, "20240101-000001-s42", 42, "completed", 0.38)
    seeded_run(runs, "20240101-000002-s0", 0, "completed", 0.50)
    seeded_run(runs, "20240101-000003-s1", 1, unfinished, 0.99)
    cell = scratch_cell(runs)
    assert cell.text() == "0.440 ± 0.085 (n=2 of 3)"
    assert [(r.seed, r.status, r.value) for r in cell.runs][2] == (1, unfinished, None)
    data = json.loads(render(build_report(runs), "json"))
    out = data["tables"][0]["rows"][ROW]["cells"]["TEST_ACC"]
    assert (out["n"], out["of"], out["low"], out["high"]) == (2, 3, 0.38, 0.50)
    assert [r["status"] for r in out["runs"]] == ["completed", "completed", unfinished]


def test_a_seed_counts_once_by_its_latest_completed_run(tmp_path):
    runs = tmp_path / "runs"
    seeded_run(runs, "20240101-000001-s42", 42, "completed", 0.30)
    seeded_run(runs, "20240101-000002-s42", 42, "completed", 0.40)  # the same seed again
    seeded_run(runs, "20240101-000003-s42", 42, "failed")  # a later failure hides nothing
    seeded_run(runs, "20240101-000004-s0", 0, "failed")
    seeded_run(runs, "20240101-000005-s0", 0, "completed", 0.50)  # the rerun of a failed seed
    cell = scratch_cell(runs)
    assert [(r.run_id, r.status) for r in cell.runs] == [
        ("20240101-000002-s42", "completed"),
        ("20240101-000005-s0", "completed"),
    ]
    assert cell.text() == "0.450 ± 0.071 (n=2)"


def test_runs_group_by_resolved_precision_and_the_fuller_group_wins(tmp_path):
    runs = tmp_path / "runs"
    seeded_run(runs, "20240101-000001-s42", 42, "completed", 0.38)
    seeded_run(runs, "20240101-000002-s0", 0, "completed", 0.50)
    # later, on another machine where `auto` chose bf16: another group, with one seed
    seeded_run(runs, "20240101-000003-bf16", 42, "completed", 0.45, precision="bf16")
    cell = scratch_cell(runs)
    assert cell.precision == "fp32" and cell.spread.n == 2 and cell.other_groups == 1
    md = render(build_report(runs), "md")
    assert "2 cell(s) have other matching runs not shown" in md  # both columns
    # with as many completed seeds, the group with the latest run wins
    seeded_run(runs, "20240101-000004-bf16", 0, "completed", 0.47, precision="bf16")
    cell = scratch_cell(runs)
    assert cell.precision == "bf16" and cell.text() == "0.460 ± 0.014 (n=2)"


def test_a_full_protocol_group_wins_over_a_fuller_quick_one(tmp_path):
    runs = tmp_path / "runs"
    seeded_run(runs, "20240101-000001-full", 42, "completed", 0.41)
    for seed in (0, 1, 2):
        seeded_run(runs, f"20240101-00001{seed}-quick", seed, "completed", 0.9, classes=5)
    quick_too = build_report(runs, any_protocol=True).tables[0].rows[ROW].cells[1]
    assert quick_too.text() == "0.410" and quick_too.protocol == "full"
    assert quick_too.other_groups == 1


@pytest.mark.parametrize(("values", "where"), [((0.30, 0.35), "below"), ((0.52, 0.55), "above")])
def test_compare_paper_says_where_ours_lie(tmp_path, values, where):
    runs = tmp_path / "runs"
    seeded_run(runs, "20240101-000001-s42", 42, "completed", values[0])
    seeded_run(runs, "20240101-000002-s0", 0, "completed", values[1])
    rows = list(csv.DictReader(io.StringIO(render(build_report(runs), "csv", True))))
    (line,) = [
        r for r in rows if r["table"] == "scratch" and r["column"] == "TEST_ACC" and r["n"] != "0"
    ]
    assert (line["paper"], line["vs_paper"], line["n"], line["of"]) == ("0.49", where, "2", "2")
    assert line["seeds"] == "42 0" and line["precision"] == "fp32"
    assert float(line["value"]) == pytest.approx(sum(values) / 2)
    assert float(line["low"]) == min(values) and float(line["high"]) == max(values)
