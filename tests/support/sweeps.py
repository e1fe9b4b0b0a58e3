"""A presets folder with one tiny preset and sweep files over it, for tests that spawn real
`tui-trainer sweep` processes (CPU, fp32, 32 px, one epoch, one thread each)."""

from __future__ import annotations

from pathlib import Path

TINY_PRESET = """\
model = "resnet18"
image_size = 32
resize = 36
batch_size = 8
epochs = 1
lr = 0.01
step_size = 1
precision = "fp32"
device = "cpu"
threads = 1
"""


def sweep_presets(folder: Path, monkeypatch, sweeps: dict[str, str]) -> Path:
    """`folder` with tiny.toml and each sweep file of `sweeps` (name -> TOML), made the presets
    folder of this test and of the processes it spawns (TUI_TRAINER_PRESETS)."""
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_PRESET)
    for name, text in sweeps.items():
        (folder / f"{name}.toml").write_text(text)
    monkeypatch.setenv("TUI_TRAINER_PRESETS", str(folder))
    return folder
