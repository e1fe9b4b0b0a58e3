"""Shared fixtures: a tiny synthetic image set made on the fly, and isolated caches."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tui_trainer.config import RunConfig

REPO = Path(__file__).resolve().parent.parent
TINY_CLASSES = ("circle", "square", "stripes")


def shared_caltech() -> Path | None:
    """Real Caltech-101: $TUI_TRAINER_DATA (CI sets it: a wrong path fails), else ../shared."""
    env = os.environ.get("TUI_TRAINER_DATA")
    if env:
        return Path(env)
    guess = REPO.parent / "shared" / "caltech101"
    return guess if guess.is_dir() else None


@pytest.fixture
def real_data() -> Path:
    path = shared_caltech()
    if path is None:
        pytest.skip("real Caltech-101 not found: set TUI_TRAINER_DATA")
    assert (path / "101_ObjectCategories").is_dir(), f"TUI_TRAINER_DATA={path} has no images"
    return path


def _draw(kind: str, rng: np.random.Generator, size: int = 80) -> np.ndarray:
    """A class-dependent picture with noise, so a network can tell the classes apart."""
    img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size]
    c = size // 2 + rng.integers(-8, 8, 2)
    if kind == "circle":
        mask = (yy - c[0]) ** 2 + (xx - c[1]) ** 2 < (size // 4) ** 2
        img[mask] = (220, 40, 40)
    elif kind == "square":
        mask = (abs(yy - c[0]) < size // 5) & (abs(xx - c[1]) < size // 5)
        img[mask] = (40, 200, 40)
    else:
        img[(xx // 8) % 2 == 0] = (40, 40, 220)
    return img


def make_tiny_dataset(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    """root/<class>/img_NN.jpg: 3 classes, one grayscale JPEG and one corrupt file."""
    rng = np.random.default_rng(seed)
    for kind in TINY_CLASSES:
        folder = root / kind
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_draw(kind, rng)).save(folder / f"img_{i:02d}.jpg", quality=90)
    gray = Image.fromarray(_draw("circle", rng)).convert("L")
    gray.save(root / "circle" / "img_gray.jpg")
    (root / "square" / "img_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "images")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Caches, hub downloads and runs go to a temporary place; never the user's."""
    monkeypatch.setenv("TUI_TRAINER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("TUI_TRAINER_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("TUI_TRAINER_PRESETS", raising=False)
    yield
    # Each AlexNet run leaves ~0.7 GB of checkpoints: free them now, not when pytest prunes its
    # old temp folders, so a full session never needs more than one test's worth of disk.
    shutil.rmtree(tmp_path, ignore_errors=True)


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
