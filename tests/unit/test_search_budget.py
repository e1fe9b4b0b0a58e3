"""The most epochs a search's trial trains (the budget's trials x epochs): a searched `epochs`,
as a range or a list of values, else the base config's."""

from __future__ import annotations

from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.studies.search_spec import Param, SearchSpec, trial_epochs


def spec(*space: Param) -> SearchSpec:
    return SearchSpec("s", "", "scratch", Path("s.toml"), 4, space)


LR = Param("lr", "float", low=0.001, high=0.1, log=True)


def test_an_unsearched_epochs_is_the_config_s():
    assert trial_epochs(spec(LR), RunConfig(epochs=12)) == 12


def test_a_searched_range_s_high_wins_over_the_config():
    ranged = Param("epochs", "int", low=2, high=6)
    assert trial_epochs(spec(LR, ranged), RunConfig(epochs=30)) == 6


def test_a_searched_list_s_largest_value():
    listed = Param("epochs", "categorical", choices=(5, 8, 3))
    assert trial_epochs(spec(listed, LR), RunConfig(epochs=30)) == 8
