"""`tui-trainer lr-find` on the tiny synthetic set: a plot, the curve saved beside the runs
(not as one), and as the very last line the suggestion."""

from __future__ import annotations

import json
import re

from tests.support.runs import invoke

TINY = [
    *("--set", "image_size=64", "--set", "resize=72", "--set", "batch_size=8"),
    *("--set", "threads=1", "--set", "precision=fp32", "--set", "device=cpu"),
]


def test_lr_find_plots_saves_and_ends_with_the_suggestion(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    args = ["lr-find", "scratch", *TINY, "--data", tiny_data, "--runs-dir", runs]
    result = invoke(*args, "--start", "1e-4", "--end", "10", "--steps", "12")
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").splitlines()
    match = re.fullmatch(r"suggested lr: (\d\.\d\de-\d\d|0\.\d+|\d+(\.\d+)?)", lines[-1])
    assert match, lines[-1]
    assert "learning rate (log)" in result.output  # the plot's x label
    assert "\x1b" not in result.output  # plain text in a pipe or a file
    saved = list((runs / ".lr-find").glob("scratch-*.json"))
    assert len(saved) == 1
    data = json.loads(saved[0].read_text())
    assert 1e-4 <= float(match.group(1)) <= 10
    assert float(match.group(1)) == float(f"{data['suggestion']:.3g}") or "e-" in match.group(1)
    assert data["config"]["batch_size"] == 8 and data["options"]["steps"] == 12
    listed = invoke("runs", "--runs-dir", runs)
    assert ".lr-find" not in listed.output and "scratch-" not in listed.output
