"""The augmentation preview (the report's Figure 5) for RGB and grayscale images."""

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from tui_trainer.data.preview import (
    LABEL_HEIGHT,
    augment_panels,
    load_image,
    preview_grid,
    write_preview,
)
from tui_trainer.errors import UserError


@pytest.fixture(params=["RGB", "L"])
def image_file(request, tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    path = tmp_path / f"photo-{request.param}.jpg"
    Image.fromarray(pixels).convert(request.param).save(path)
    return path


def test_panels_are_the_decoded_image_and_its_three_augmentations(image_file):
    image = load_image(image_file)
    assert image.shape == (3, 224, 224) and image.dtype == torch.uint8
    panels = augment_panels(image, seed=1)
    assert [label for label, _ in panels] == ["original", "CS-HF", "H-RP", "B-GS-R"]
    assert torch.equal(panels[0][1], image)
    for _, panel in panels:
        assert panel.shape == (3, 224, 224) and panel.dtype == torch.uint8
    # B-GS-R ends in grayscale: its three channels agree (up to rotation fill, also gray)
    gray = panels[3][1]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_a_seed_repeats_the_draws_and_leaves_the_callers_rng_alone(image_file):
    image = load_image(image_file)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = augment_panels(image, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = augment_panels(image, seed=5)
    assert all(torch.equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    c, d = augment_panels(image), augment_panels(image)  # unseeded: fresh draws each time
    assert not all(torch.equal(x, y) for (_, x), (_, y) in zip(c[1:], d[1:], strict=True))


def test_the_grid_is_two_by_two_with_labels(image_file, tmp_path):
    grid = preview_grid(augment_panels(load_image(image_file), seed=0))
    assert grid.size == (2 * 224, 2 * (224 + LABEL_HEIGHT)) and grid.mode == "RGB"
    out = write_preview(image_file, tmp_path / "grid.png", seed=0)
    with Image.open(out) as saved:
        assert saved.size == grid.size
        assert np.array_equal(np.asarray(saved), np.asarray(grid))


@pytest.mark.parametrize(
    "source, out, message",
    [
        ("missing.jpg", "grid.png", "does not exist"),
        ("broken.jpg", "grid.png", "cannot read image"),
        ("ok.jpg", "grid.gif", "must end in .png or .jpg"),
        ("ok.jpg", "no/such/dir/grid.png", "does not exist: create it"),
    ],
)
def test_bad_input_is_a_user_error(tmp_path, source, out, message):
    Image.new("RGB", (50, 50)).save(tmp_path / "ok.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(UserError, match=message):
        write_preview(tmp_path / source, tmp_path / out)


def test_previewing_in_a_thread_does_not_move_a_training_threads_draws():
    """The TUI previews while a run may train in another thread: that run's draws from the
    global generator (seeded per epoch, so a resumed epoch replays) must come out the same."""
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)

    def draws(out: list[float], done: threading.Event) -> None:
        torch.manual_seed(0)
        for _ in range(100):
            out.append(torch.rand(1).item())
            time.sleep(0.001)
        done.set()

    alone: list[float] = []
    draws(alone, threading.Event())
    beside: list[float] = []
    done = threading.Event()
    trainer = threading.Thread(target=draws, args=(beside, done))
    trainer.start()
    previews = 0
    while not done.is_set() or previews == 0:
        augment_panels(image)
        previews += 1
    trainer.join()
    assert beside == alone
