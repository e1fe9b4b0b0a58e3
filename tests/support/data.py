"""Image sets for tests: the real Caltech-101 when present, and a tiny synthetic one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.paths import REPO

TINY_CLASSES = ("circle", "square", "stripes")


def shared_caltech() -> Path | None:
    """Real Caltech-101: $TUI_TRAINER_DATA (CI sets it: a wrong path fails), else ../shared."""
    env = os.environ.get("TUI_TRAINER_DATA")
    if env:  # relative to where the tests started: a test may run a command from another folder
        return Path(env).resolve()
    guess = REPO.parent / "shared" / "caltech101"
    return guess if guess.is_dir() else None


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
