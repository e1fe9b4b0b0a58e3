"""The report's Figure 5: one image beside its CS-HF, H-RP and B-GS-R augmentations.

The image goes through the data pipeline's own decode (RGB, Resize 256, CenterCrop 224), then once
through each of `augment.PIPELINES`, exactly as a training image would. `augment_panels` gives the
four uint8 tensors (the TUI draws them in the terminal); `preview_grid` lays them out as a labelled
2x2 PIL image (`tui-trainer preview`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from .augment import augment_one
from .config import UserError
from .data import decode_image

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
    without one every call draws new ones. Either way the caller's RNG state is left alone."""
    with torch.random.fork_rng(devices=[]):
        if seed is None:
            torch.seed()
        else:
            torch.manual_seed(seed)
        return [
            (label, image if kind is None else augment_one(image, kind)) for label, kind in PANELS
        ]


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
