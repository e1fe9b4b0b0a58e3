"""Runs in the test's own process: a small config, hooks into the decode, the decode cache,
stand-in ImageNet weights, the CLI through CliRunner, and run folders written by hand."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from tui_trainer.config import RunConfig, load_preset
from tui_trainer.files import write_json_atomic


def tiny_config(**overrides) -> RunConfig:
    base = dict(
        image_size=64,
        resize=72,
        batch_size=8,
        epochs=2,
        lr=0.01,
        step_size=1,
        precision="fp32",
        device="cpu",
        threads=1,  # 2 threads fight each other when the machine is busy
    )
    base.update(overrides)
    return RunConfig().with_overrides(base)


def stop_decoding_after(monkeypatch, n: int, stop: Callable[[], None]) -> list[Path]:
    """Make the image decode call `stop()` once `n` images are decoded (as if the user stopped
    the run then). Returns the paths decoded so far, growing as the decode goes on."""
    from tui_trainer.data import decode as data

    real, decoded, lock = data.decode_image, [], threading.Lock()

    def counting(path, resize, size):
        image = real(path, resize, size)
        with lock:
            decoded.append(path)
            if len(decoded) == n:
                stop()
        return image

    monkeypatch.setattr(data, "decode_image", counting)
    return decoded


def cache_entries() -> list[Path]:
    """What the decode cache ($TUI_TRAINER_CACHE, a temporary folder in tests) holds."""
    cache = Path(os.environ["TUI_TRAINER_CACHE"])
    return sorted(cache.iterdir()) if cache.is_dir() else []


def stand_in_imagenet(model: str):
    """A random 1000-class state dict saved where torchvision looks for the real ImageNet one
    (under $TORCH_HOME, which `isolated_env` points at a temporary folder)."""
    import torch
    import torchvision

    from tui_trainer.train.models import imagenet_cache_path

    path = imagenet_cache_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    reference = getattr(torchvision.models, model)(num_classes=1000)
    torch.save(reference.state_dict(), path)
    return reference


def invoke(*args):
    """The CLI in this process through Typer's CliRunner; paths and numbers become strings."""
    from typer.testing import CliRunner

    from tui_trainer.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def fake_run(runs: Path, run_id: str, preset: str, status: str, summary: dict, **overrides):
    """A run folder written by hand: `preset`'s config with `overrides`, and a summary."""
    folder = runs / run_id
    folder.mkdir(parents=True)
    config = load_preset(preset).config.with_overrides(overrides)
    write_json_atomic(folder / "config.json", {"config": config.to_dict(), "preset": preset})
    write_json_atomic(folder / "summary.json", {"status": status, **summary})
