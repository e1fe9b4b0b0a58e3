"""runs/groups.py: what counts as the same run, the same run but for its seed, and a spread."""

import math

import pytest

from tui_trainer.runs.groups import comparable, seed_group_key, spread, spread_text


def test_seed_group_key_ignores_seed_and_placement_but_not_precision():
    a = {"lr": 0.05, "seed": 42, "device": "cpu", "threads": 2}
    b = {"lr": 0.05, "seed": 0, "device": "cuda"}
    assert comparable(a) != comparable(b)  # the seed is part of what a run measured
    assert seed_group_key(a, "fp32") == seed_group_key(b, "fp32")
    assert seed_group_key(a, "fp32") != seed_group_key(b, "bf16")
    assert seed_group_key({"lr": 0.01, "seed": 42}, "fp32") != seed_group_key(a, "fp32")


def test_invalid_config_has_no_key():
    assert comparable({"lr": -1}) is None
    assert seed_group_key({"lr": -1}, "fp32") is None


def test_spread_figures_and_text():
    s = spread([0.38, 0.50, None, 0.44, float("nan")])
    assert s.n == 3
    assert s.mean == pytest.approx(0.44)
    assert s.std == pytest.approx(0.06)
    assert (s.low, s.high) == (0.38, 0.50)
    assert spread_text(s) == "0.440 ± 0.060 (n=3)"
    assert spread_text(spread([0.5, 0.6]), of=3) == "0.550 ± 0.071 (n=2 of 3)"
    assert spread_text(spread([0.5])) == "0.500"
    assert spread_text(spread([0.5]), of=3) == "0.500 (n=1 of 3)"
    assert spread_text(spread([])) == "—"
    assert spread([0.5]).std is None
    assert math.isclose(spread([1, 2]).mean, 1.5)


@pytest.mark.parametrize(
    ("reference", "where"),
    [(0.30, "above"), (0.38, "within"), (0.47, "within"), (0.50, "within"), (0.51, "below")],
)
def test_against_the_paper(reference, where):
    assert spread([0.38, 0.50, 0.44]).against(reference) == where


def test_against_needs_values():
    with pytest.raises(ValueError, match="no values"):
        spread([]).against(0.5)


# --- seed groups and their bands ------------------------------------------------------------


def test_group_by_seed_merges_only_runs_that_differ_by_seed(tmp_path):
    from tests.support.seed_runs import FINETUNE_IDS, SCRATCH_IDS, make_seed_runs
    from tui_trainer.runs.groups import group_by_seed

    groups = group_by_seed(make_seed_runs(tmp_path))
    assert [[r.id for r in g.runs] for g in groups] == [
        SCRATCH_IDS,
        ["20240201-130000-scratch"],  # lr 0.01
        ["20240201-140000-scratch"],  # bf16
        FINETUNE_IDS,
    ]
    assert groups[0].seeds == (42, 0, 1) and groups[3].seeds == (42, 0)
    assert [g.label for g in groups] == [
        "scratch epochs=4",
        "scratch lr=0.01 epochs=4",
        "scratch epochs=4",
        "finetune epochs=3",
    ]
    assert [g.precision for g in groups] == ["fp32", "fp32", "bf16", "fp32"]


def test_a_run_with_an_invalid_config_is_a_group_of_its_own(tmp_path):
    from tests.support.runs import fake_run
    from tui_trainer.files import write_json_atomic
    from tui_trainer.runs.groups import group_by_seed
    from tui_trainer.runs.store import Run

    for run_id in ("a", "b"):
        fake_run(tmp_path, run_id, "scratch", "completed", {})
        write_json_atomic(tmp_path / run_id / "config.json", {"config": {"lr": -1}})
    groups = group_by_seed([Run(tmp_path / "a"), Run(tmp_path / "b")])
    assert [g.key for g in groups] == ["run:a", "run:b"]


def test_label_names_what_differs_from_the_preset():
    from tui_trainer.runs.groups import preset_differences

    same = {"lr": 0.05, "epochs": 30, "seed": 3, "device": "cpu", "last_batch": "drop"}
    assert preset_differences(same, "scratch") == {}
    # in RunConfig's order, whatever order the config file had; a run from before the scratch
    # preset dropped the last partial batch says so
    changed = preset_differences({"lr": 0.01, "classes": 5}, "scratch")
    assert list(changed.items()) == [("classes", 5), ("last_batch", "keep"), ("lr", 0.01)]
    assert preset_differences({"lr": 0.01}, "no-such-preset") == {"lr": 0.01}


def rows(accs, start=1):
    return [{"epoch": e, "val_acc": a} for e, a in enumerate(accs, start=start)]


def test_epoch_band_mean_min_max_with_the_runs_that_reached_each_epoch():
    from tui_trainer.runs.groups import epoch_band

    band = epoch_band(
        [rows([0.02, 0.1, 0.3, 0.4]), rows([0.02, 0.2, 0.4, 0.5]), rows([0.05, 0.15])], "val_acc"
    )
    assert [p.epoch for p in band] == [1, 2, 3, 4]
    assert [p.n for p in band] == [3, 3, 2, 2]
    assert [p.mean for p in band] == pytest.approx([0.03, 0.15, 0.35, 0.45])
    assert [(p.low, p.high) for p in band] == [(0.02, 0.05), (0.1, 0.2), (0.3, 0.4), (0.4, 0.5)]


def test_epoch_band_stops_where_fewer_than_two_runs_remain():
    from tui_trainer.runs.groups import epoch_band

    band = epoch_band([rows([0.1, 0.2, 0.3, 0.4]), rows([0.3, 0.4])], "val_acc")
    assert [p.epoch for p in band] == [1, 2]
    assert epoch_band([rows([0.1, 0.2])], "val_acc") == ()
    assert epoch_band([], "val_acc") == ()


def test_epoch_band_skips_missing_values_and_counts_a_repeated_epoch_once():
    from tui_trainer.runs.groups import epoch_band

    resumed = rows([0.1, 0.2]) + [{"epoch": 2, "val_acc": 0.25}]  # epoch 2 again after a resume
    diverged = rows([0.3, float("nan")])
    band = epoch_band([resumed, diverged, rows([0.5, 0.6])], "val_acc")
    assert [p.n for p in band] == [3, 2]
    assert band[1].mean == pytest.approx((0.25 + 0.6) / 2)
    assert epoch_band([rows([0.1]), [{"epoch": 1}]], "val_acc") == ()


def test_band_counts_text():
    from tui_trainer.runs.groups import BandPoint, band_counts_text

    def points(*ns):
        return [BandPoint(e, n, 0.5, 0.4, 0.6) for e, n in enumerate(ns, start=1)]

    assert band_counts_text(points(3, 3, 2, 2)) == "n=3 to epoch 2, n=2 to epoch 4"
    assert band_counts_text(points(3, 3)) == ""
    assert band_counts_text([]) == ""
