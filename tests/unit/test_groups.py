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
