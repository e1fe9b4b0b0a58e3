"""Write a small Caltech-101-shaped image set where the real one is not at hand (a GPU box).

    python scripts/make_synthetic_data.py DIR [--classes 10] [--per-class 60] [--size 128]

DIR gets `101_ObjectCategories/<class>/image_NNNN.jpg` and the report's split files `train.txt`
and `test.txt` (two thirds train, as in the report), so `--data DIR` reads it through the same
code path as the real data: JPEG decode, the grayscale-to-RGB conversion (every seventh image is
saved grayscale), the decoded cache. Each class is a shape in a colour at a random place and size
on a noisy background: a scratch AlexNet learns it in a few epochs, so a short run shows
accuracy rising above chance. Seeded: the same options write the same files. Needs only Pillow.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("ellipse", "rectangle", "triangle", "cross")


def draw_image(cls: int, rng: random.Random, size: int) -> Image.Image:
    hue = (cls * 47) % 255
    background = tuple(rng.randrange(40, 200) for _ in range(3))
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    for _ in range(3):  # clutter shared by every class, so the shape itself has to be learned
        x, y = rng.randrange(size), rng.randrange(size)
        draw.line((x, y, rng.randrange(size), rng.randrange(size)), fill=_colour(rng), width=2)
    extent = rng.randrange(size // 2, size * 3 // 4)
    x0, y0 = rng.randrange(size - extent), rng.randrange(size - extent)
    box = (x0, y0, x0 + extent, y0 + extent)
    colour = _hsv(hue)
    shape = SHAPES[cls % len(SHAPES)]
    if shape == "ellipse":
        draw.ellipse(box, fill=colour)
    elif shape == "rectangle":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        corners = [(x0, y0 + extent), (x0 + extent // 2, y0), (x0 + extent, y0 + extent)]
        draw.polygon(corners, fill=colour)
    else:
        w = extent // 4
        draw.rectangle((x0 + extent // 2 - w, y0, x0 + extent // 2 + w, y0 + extent), fill=colour)
        draw.rectangle((x0, y0 + extent // 2 - w, x0 + extent, y0 + extent // 2 + w), fill=colour)
    return img.filter(ImageFilter.GaussianBlur(rng.random()))


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return tuple(rng.randrange(256) for _ in range(3))


def _hsv(hue: int) -> tuple[int, int, int]:
    rgb = Image.new("HSV", (1, 1), (hue, 220, 230)).convert("RGB")
    return rgb.getpixel((0, 0))


def write_dataset(root: Path, classes: int, per_class: int, size: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    images = root / "101_ObjectCategories"
    train, test = [], []
    for cls in range(classes):
        name = f"class_{cls:03d}"
        (images / name).mkdir(parents=True, exist_ok=True)
        for i in range(1, per_class + 1):
            img = draw_image(cls, rng, size)
            if i % 7 == 0:
                img = img.convert("L")
            rel = f"{name}/image_{i:04d}.jpg"
            img.save(images / rel, quality=90)
            (test if i % 3 == 0 else train).append(rel)
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "test.txt").write_text("\n".join(test) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.classes < 2 or args.per_class < 6 or args.size < 64:
        parser.error("use --classes >= 2, --per-class >= 6 and --size >= 64")
    write_dataset(args.root, args.classes, args.per_class, args.size, args.seed)
    print(f"wrote {args.classes} x {args.per_class} images under {args.root}")


if __name__ == "__main__":
    main()
