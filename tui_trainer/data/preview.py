"""The report's Figure 5: one image beside its CS-HF, H-RP and B-GS-R augmentations.

The image goes through the data pipeline's own decode (RGB, Resize 256, CenterCrop 224), then once
through each augmentation pipeline, with the kernels training uses (`augment.augment_image`).
`augment_panels` gives the four uint8 tensors (the TUI draws them in the terminal);
`preview_grid` lays them out as a labelled 2x2 PIL image (`tui-trainer preview`).

The draws come from a private generator, never the global one: the TUI previews in one thread
while a run may be training in another, and that run's augmentation and dropout draws (seeded per
epoch, so a resumed epoch replays exactly) must not move.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from tui_trainer.data.augment import augment_image
from tui_trainer.data.decode import decode_image
from tui_trainer.data.layout import find_layout, list_classes, list_images
from tui_trainer.errors import UserError

# Figure 5's order: original (top-left), CS-HF (top-right), H-RP (bottom-left), B-GS-R.
PANELS = (("original", None), ("CS-HF", "cs-hf"), ("H-RP", "h-rp"), ("B-GS-R", "b-gs-r"))
OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg")
LABEL_HEIGHT = 18


def load_image(path: Path, resize: int = 256, size: int = 224) -> torch.Tensor:
    """uint8 (3, size, size), decoded like a dataset image; UserError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image {path} does not exist: give the path of a JPEG or PNG file")
    try:
        return decode_image(path, resize, size)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read image {path} ({exc}): give a JPEG or PNG file") from None


def augment_panels(image: torch.Tensor, seed: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """[(label, uint8 CHW tensor)] for the original and each pipeline. A seed repeats the draws;
    without one every call draws new ones. The global RNG is neither read nor moved."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return [
        (label, image if kind is None else augment_image(image, kind, generator))
        for label, kind in PANELS
    ]


def resolve_image_path(text: str | Path, data_dir: Path) -> Path:
    """A typed path: absolute (or ~), else relative to the data folder, else to its class
    folders' parent (how split files and misclassified lists name images: class/file.jpg).
    Unresolved relative paths come back joined to `data_dir`, for the error to name."""
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    candidates = [data_dir / path]
    try:
        candidates.append(find_layout(data_dir).images_dir / path)
    except UserError:
        pass
    return next((c for c in candidates if c.is_file()), candidates[0])


def class_of(path: Path, data_dir: Path) -> str | None:
    """The dataset class an image belongs to (its folder), or None if it is not in the dataset."""
    try:
        images_dir = find_layout(data_dir).images_dir.resolve()
        rel = Path(path).resolve().relative_to(images_dir)
    except (UserError, OSError, ValueError):
        return None
    return rel.parts[0] if len(rel.parts) == 2 else None


def load_random_image(
    data_dir: Path, rng: random.Random | None = None, tries: int = 5
) -> tuple[Path, str, torch.Tensor]:
    """(path, class, decoded image) for a random class's random image. Unreadable files (the
    real dataset has none, the tests' has one) are skipped for another draw, a few times."""
    rng = rng or random.Random()
    images_dir = find_layout(data_dir).images_dir
    classes = list_classes(images_dir)
    error: UserError | None = None
    for _ in range(tries):
        name = rng.choice(classes)
        path = rng.choice(list_images(images_dir / name))
        try:
            return path, name, load_image(path)
        except UserError as exc:
            error = exc
    assert error is not None
    raise error


def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())


def preview_grid(panels: list[tuple[str, torch.Tensor]], columns: int = 2) -> Image.Image:
    """The panels in a grid, each under a label strip."""
    images = [(label, to_pil(t)) for label, t in panels]
    width = max(im.width for _, im in images)
    height = max(im.height for _, im in images) + LABEL_HEIGHT
    rows = -(-len(images) // columns)
    grid = Image.new("RGB", (columns * width, rows * height), (24, 24, 24))
    draw = ImageDraw.Draw(grid)
    for i, (label, im) in enumerate(images):
        x, y = (i % columns) * width, (i // columns) * height
        draw.text((x + 4, y + 3), label, fill=(240, 240, 240))
        grid.paste(im, (x, y + LABEL_HEIGHT))
    return grid


def write_preview(image_path: Path, out: Path, seed: int | None = None) -> Path:
    """Decode, augment and save the 2x2 grid to `out` (.png or .jpg)."""
    out = Path(out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserError(f"--out {out} must end in .png or .jpg: e.g. --out preview.png")
    if not out.parent.is_dir():
        raise UserError(f"folder {out.parent} does not exist: create it or pick another --out")
    grid = preview_grid(augment_panels(load_image(image_path), seed))
    try:
        grid.save(out)
    except OSError as exc:
        raise UserError(f"cannot write {out} ({exc.strerror or exc}): pick another --out") from None
    return out
