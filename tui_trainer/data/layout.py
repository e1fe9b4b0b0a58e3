"""Caltech-101 (or any class-per-folder image set): where the images are and how they split.

The report's split files (`train.txt` / `test.txt`) when present, else a seeded stratified split
with the same proportions; train is split 1:1 into train and validation.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.errors import UserError

DATA_ENV = "TUI_TRAINER_DATA"
DEFAULT_DATA_DIR = Path("data/caltech101")
CATEGORIES = "101_ObjectCategories"
BACKGROUND = "BACKGROUND_Google"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"}
# Without split files: the report's proportions (3,049 of 9,145 images are test).
TEST_FRACTION = 1 / 3


class DataError(UserError):
    pass


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    return Path(data_dir or os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR).expanduser()


def fix_hint() -> str:
    return "pass --data DIR, set TUI_TRAINER_DATA, or fetch it with `tui-trainer data download`"


@dataclass(frozen=True)
class Layout:
    images_dir: Path  # a folder of class subfolders
    split_dir: Path | None  # where train.txt / test.txt live, if they do


def _is_image(path: Path) -> bool:
    """An image by its extension that is a regular file: a FIFO named x.jpg would block the
    decode forever, a device would never end."""
    return path.suffix.lower() in IMAGE_EXTS and path.is_file()


def list_images(folder: Path) -> list[Path]:
    """The image files of one class folder, sorted."""
    return sorted(f for f in folder.iterdir() if _is_image(f))


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_layout(data_dir: Path) -> Layout:
    """Accept DIR/101_ObjectCategories, 101_ObjectCategories itself, torchvision's
    DIR/caltech101/101_ObjectCategories, or any folder of class subfolders."""
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} does not exist: {fix_hint()}")
    for images in (data_dir / CATEGORIES, data_dir / "caltech101" / CATEGORIES):
        if images.is_dir():
            return Layout(images, _split_dir(images.parent))
    if data_dir.name == CATEGORIES:
        return Layout(data_dir, _split_dir(data_dir) or _split_dir(data_dir.parent))
    subdirs = _class_dirs(data_dir)
    if any(_is_image(f) for d in subdirs for f in d.iterdir()):
        return Layout(data_dir, _split_dir(data_dir))
    if not subdirs and not any(data_dir.iterdir()):
        raise DataError(f"data folder {data_dir} is empty: {fix_hint()}")
    raise DataError(
        f"data folder {data_dir} has no {CATEGORIES}/ and no class subfolders of images: "
        f"point --data at the Caltech-101 folder or an ImageFolder-style folder"
    )


def _split_dir(folder: Path) -> Path | None:
    has = (folder / "train.txt").is_file() and (folder / "test.txt").is_file()
    return folder if has else None


@dataclass
class Splits:
    """Paths relative to `images_dir` with labels 0..N-1 by sorted class name."""

    images_dir: Path
    classes: list[str]
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    test: list[tuple[str, int]]
    split_source: str  # "files" (train.txt/test.txt) or "seeded" (stratified, seeded)

    def all_items(self) -> list[tuple[str, int]]:
        return self.train + self.val + self.test


def _chosen_classes(images_dir: Path, wanted: int) -> list[str]:
    """The first `wanted` classes (0: all); fewer than two, or fewer than asked, is refused:
    a one-class model learns nothing, and classes=N past the data is a typo."""
    classes = list_classes(images_dir)
    if wanted > len(classes):
        raise DataError(
            f"classes={wanted} but {images_dir} has {len(classes)} classes of images: "
            f"give classes={len(classes)} or fewer (0 = all)"
        )
    chosen = classes[:wanted] if wanted else classes
    if len(chosen) < 2:
        raise DataError(
            f"{len(chosen)} class to train on in {images_dir}: a classifier needs at least 2; "
            "give classes=2 or more, or add class folders"
        )
    return chosen


def list_classes(images_dir: Path, limit: int = 0) -> list[str]:
    names = [d.name for d in _class_dirs(images_dir) if d.name != BACKGROUND]
    names = [n for n in names if any(_is_image(f) for f in (images_dir / n).iterdir())]
    if not names:
        raise DataError(f"{images_dir} has no class folders with images: {fix_hint()}")
    return names[:limit] if limit else names


def _split_lines(path: Path) -> list[str]:
    try:  # utf-8-sig: a BOM (Windows editors) would otherwise hide the first line's class
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not a text file of image paths: fix the split file or remove it"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read split file {path} ({exc.strerror}): fix it") from None


def _read_split_file(
    path: Path, images_dir: Path, index: dict[str, int], known: set[str]
) -> list[tuple[str, int]]:
    """The file's (image, label) pairs for the classes in `index`. A line naming no class
    folder (a typo, another case, an absolute path), leading out of the folder, naming a
    missing image or an image listed before is refused: each would change what is trained."""
    items, seen = [], {}
    for line_no, line in enumerate(_split_lines(path), 1):
        rel = line.strip()
        if not rel:
            continue
        where = f"{path}:{line_no} names {rel}"
        _check_split_line(where, rel, images_dir, known)
        if rel in seen:
            raise DataError(
                f"{where} again (first on line {seen[rel]}): list each image once, or it "
                "trains twice and may land in both train and validation"
            )
        seen[rel] = line_no
        cls = rel.split("/", 1)[0]
        if cls not in index:
            continue  # the background class, or a class left out by `classes`
        if not (images_dir / rel).is_file():
            raise DataError(f"{where}, which is not in {images_dir}: fix the split file or folder")
        items.append((rel, index[cls]))
    return items


def _check_split_line(where: str, rel: str, images_dir: Path, known: set[str]) -> None:
    if Path(rel).is_absolute() or ".." in Path(rel).parts:  # never an image outside the folder
        raise DataError(f"{where}, which leads out of {images_dir}: name images as class/file.jpg")
    cls = rel.split("/", 1)[0]
    if cls not in known:
        alike = [k for k in sorted(known) if k.lower() == cls.lower()]
        hint = f" (did you mean {alike[0]!r}? names are case-sensitive)" if alike else ""
        raise DataError(
            f"{where}, whose class {cls!r} is not a folder of {images_dir}{hint}: "
            "fix the split file or the image folder"
        )


def _check_disjoint(split_dir: Path, train: list[tuple[str, int]], test) -> None:
    both = sorted({rel for rel, _ in train} & {rel for rel, _ in test})
    if both:
        raise DataError(
            f"{both[0]} is in both {split_dir / 'train.txt'} and test.txt ({len(both)} such "
            "image(s)): a test image must not be trained on; remove it from one of the two"
        )


def _stratified(items, test_size: float, seed: int, what: str):
    from sklearn.model_selection import train_test_split

    labels = [label for _, label in items]
    counts = Counter(labels)
    rare = [label for label, n in counts.items() if n < 2]
    if rare or len(items) < 2:
        raise DataError(f"too few images to split {what}: every class needs at least 2 ({rare})")
    try:
        a, b = train_test_split(items, test_size=test_size, stratify=labels, random_state=seed)
    except ValueError as exc:
        raise DataError(f"cannot split {what} ({exc}): use more images per class") from None
    return sorted(a), sorted(b)


def _require_per_class(
    items: list[tuple[str, int]], index: dict[str, int], least: int, counted: str, purpose: str
) -> None:
    """Refuse the first class with fewer than `least` items, naming it and the fix."""
    counts = Counter(label for _, label in items)
    for name, i in index.items():
        if counts[i] < least:
            raise DataError(
                f"class {name!r} has {counts[i]} {counted}, too few {purpose}: "
                f"give it at least {least} or leave it out"
            )


def make_splits(layout: Layout, config: RunConfig) -> Splits:
    classes = _chosen_classes(layout.images_dir, config.classes)
    index = {name: i for i, name in enumerate(classes)}
    if layout.split_dir is not None:
        known = {d.name for d in _class_dirs(layout.images_dir)}
        train = _read_split_file(layout.split_dir / "train.txt", layout.images_dir, index, known)
        test = _read_split_file(layout.split_dir / "test.txt", layout.images_dir, index, known)
        _check_disjoint(layout.split_dir, train, test)
        source = "files"
    else:
        items = [
            (f"{name}/{f.name}", index[name])
            for name in classes
            for f in list_images(layout.images_dir / name)
        ]
        # one for test, two for the train/val split
        _require_per_class(items, index, 3, "image(s)", "to split into train, val and test")
        train, test = _stratified(items, TEST_FRACTION, config.seed, "train/test")
        source = "seeded"
    if not test:
        raise DataError(
            f"the test split is empty for {len(classes)} classes: check the split files"
        )
    _require_per_class(train, index, 2, "training image(s)", "for the train/val split")
    train, val = _stratified(train, config.val_fraction, config.seed, "train/val")
    return Splits(layout.images_dir, classes, train, val, test, source)
