"""A bad search spec gets one line, `error: ...`, exit code 2, and nothing written: no runs
folder, no study journal. One case per line: the [search] text (or an option) and a piece of
the message."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.support.searches import SEARCH_PRESET
from tui_trainer.cli.app import app

runner = CliRunner()

HEAD = 'base = "small"\n[search]\ntrials = 4\n'
CASES = [
    ("lr = { low = 0.1, high = 0.01 }", (), "lr: low (0.1) must be below high (0.01)"),
    ("lr = { low = 0.1, high = 0.1 }", (), "low (0.1) must be below high (0.1)"),
    ("weight_decay = { low = 0.0, high = 0.01, log = true }", (), "a log scale needs low > 0"),
    ("bogus = [1, 2]", (), "unknown config key 'bogus' in [search.space]"),
    ("", (), "[search.space] is empty"),
    ("gamma = [0.1, 'half']", (), "'half' has the wrong type (str): gamma takes a float"),
    ("model = [1, 2]", (), "1 has the wrong type (int): model takes a str"),
    ("epochs = [2, 2.5]", (), "2.5 has the wrong type (float): epochs takes a int"),
    ("step_size = { low = 1.5, high = 4 }", (), "low must be an integer"),
    ("momentum = { low = 0.5, high = 1.5 }", (), "momentum=1.5 must be in [0, 1)"),
    ("model = { low = 1, high = 2 }", (), "model is not a number: give a list"),
    ("gamma = []", (), "the list of values is empty"),
    ("lr = [0.01, 0.1]", ("--trials", "0"), "trials must be a whole number from 1"),
    ("lr = [0.01, 0.1]", ("--trials", "-3"), "trials must be a whole number from 1"),
    ("lr = [0.01, 0.1]", ("--set", "lr=0.5"), "--set lr: the search samples lr"),
    ("lr = [0.01, 0.1]", ("--set", "bogus=1"), "--set: unknown config key 'bogus'"),
    ("lr = [0.01, 0.1]", ("--out", "x.md"), "--out writes --slurm's script or --results'"),
    ("lr = [0.01, 0.1]", ("--results", "html"), "--results 'html': choose one of md, csv"),
]
TABLE_CASES = [
    ('base = "small"\n[search]\ntrials = 0\n[search.space]\nlr = [0.1]', "trials must be"),
    (
        'base = "small"\n[search]\ntrials = 2\npruner = "asha"\n[search.space]\nlr = [0.1]',
        "pruner = 'asha': use one of median, hyperband, threshold, none",
    ),
    (
        'base = "small"\n[search]\ntrials = 2\npruner = "threshold"\n[search.space]\nlr = [0.1]',
        "the threshold pruner needs lower or upper",
    ),
    (
        'base = "small"\nlr = 0.1\n[search]\ntrials = 2\n[search.space]\nlr = [0.1]',
        "unknown key 'lr': a search file takes",
    ),
    ('base = "small"\n[search]\ntrials = 2\nspace = 3', "[search.space] is empty"),
]


def _setup(tmp_path, monkeypatch, text: str):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "small.toml").write_text(SEARCH_PRESET.format(epochs=2))
    (presets / "bad.toml").write_text(text)
    monkeypatch.setenv("TUI_TRAINER_PRESETS", str(presets))


def _one_error(tmp_path, tiny_data, options, message):
    runs = tmp_path / "runs"
    args = ["tune", "bad", "--runs-dir", str(runs), "--data", str(tiny_data), *options]
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert message in lines[0], lines[0]
    assert not runs.exists()  # nothing written: no runs folder, no journal


@pytest.mark.parametrize(("space", "options", "message"), CASES, ids=[c[2] for c in CASES])
def test_a_bad_space_is_one_line_exit_2_nothing_written(
    space, options, message, tmp_path, monkeypatch, tiny_data
):
    _setup(tmp_path, monkeypatch, HEAD + "[search.space]\n" + space + "\n")
    _one_error(tmp_path, tiny_data, options, message)


@pytest.mark.parametrize(("text", "message"), TABLE_CASES, ids=[c[1] for c in TABLE_CASES])
def test_a_bad_search_table_is_one_line_exit_2_nothing_written(
    text, message, tmp_path, monkeypatch, tiny_data
):
    _setup(tmp_path, monkeypatch, text + "\n")
    _one_error(tmp_path, tiny_data, (), message)


def test_a_search_is_not_a_sweep_and_the_preset_is_not_listed(tmp_path, monkeypatch):
    _setup(tmp_path, monkeypatch, HEAD + "[search.space]\nlr = [0.01, 0.1]\n")
    result = runner.invoke(app, ["sweep", "bad", "--dry-run"])
    assert result.exit_code == 2 and "bad is a search: run it with `tui-trainer tune bad`" in (
        result.output
    )
    assert "bad" not in runner.invoke(app, ["sweeps"]).output
