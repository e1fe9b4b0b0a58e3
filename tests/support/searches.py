"""A presets folder with a tiny preset on a real-image subset and search files over it, for
tests that run `tui-trainer tune` (CPU, fp32, 64 px, three classes, one thread each)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.real_subset import real_subset

SEARCH_PRESET = """\
model = "resnet18"
image_size = 64
resize = 72
batch_size = 8
epochs = {epochs}
lr = 0.01
step_size = 1
precision = "fp32"
device = "cpu"
threads = 1
last_batch = "keep"
"""

SPACE = """\
[search.space]
lr = { low = 0.001, high = 0.1, log = true }
gamma = [0.1, 0.5]
"""


def search_file(trials: int, pruner: str = "none", settings: str = "", space: str = SPACE) -> str:
    head = f'base = "small"\n[search]\ntrials = {trials}\npruner = "{pruner}"\n'
    extra = f"[search.pruner_settings]\n{settings}\n" if settings else ""
    return head + extra + space


def search_setup(
    tmp_path: Path, monkeypatch, real_data: Path, searches: dict[str, str], epochs: int = 2
) -> tuple[Path, Path, Path]:
    """(presets, data, runs): the presets folder (TUI_TRAINER_PRESETS for this test and its
    children) with small.toml and each search of `searches`, a real subset, a runs folder."""
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "small.toml").write_text(SEARCH_PRESET.format(epochs=epochs))
    for name, text in searches.items():
        (presets / f"{name}.toml").write_text(text)
    monkeypatch.setenv("TUI_TRAINER_PRESETS", str(presets))
    data = real_subset(real_data, tmp_path / "data", classes=3, per_class=12)
    return presets, data, tmp_path / "runs"


def trial_runs(runs: Path) -> dict[int, dict]:
    """trial number -> the run's config.json, for every run folder of a search."""
    found = {}
    for config in sorted(runs.glob("*/config.json")):
        meta = json.loads(config.read_text())
        if "trial" in meta:
            assert meta["trial"] not in found, f"trial {meta['trial']} trained twice"
            found[meta["trial"]] = meta | {"run_id": config.parent.name}
    return found
