"""Caltech-101 (or any class-per-folder image set): discovery, splits, decoding, batches.

Images are decoded, resized and center-cropped once into one uint8 tensor kept in memory (and cached
on disk keyed by the file list, sizes and mtimes), so epochs read no JPEGs and need no DataLoader
worker processes: forking workers from a threaded app (the TUI) can deadlock.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig, Stopped, UserError

DATA_ENV = "TUI_TRAINER_DATA"
CACHE_ENV = "TUI_TRAINER_CACHE"
DEFAULT_DATA_DIR = Path("data/caltech101")
CATEGORIES = "101_ObjectCategories"
BACKGROUND = "BACKGROUND_Google"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"}
# Without split files: the report's proportions (3,049 of 9,145 images are test).
TEST_FRACTION = 1 / 3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PLAIN_MEAN = (0.5, 0.5, 0.5)  # random-init models: the course notebook's normalisation
PLAIN_STD = (0.5, 0.5, 0.5)


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
    return path.suffix.lower() in IMAGE_EXTS


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


def list_classes(images_dir: Path, limit: int = 0) -> list[str]:
    names = [d.name for d in _class_dirs(images_dir) if d.name != BACKGROUND]
    names = [n for n in names if any(_is_image(f) for f in (images_dir / n).iterdir())]
    if not names:
        raise DataError(f"{images_dir} has no class folders with images: {fix_hint()}")
    return names[:limit] if limit else names


def _read_split_file(path: Path, images_dir: Path, index: dict[str, int]) -> list[tuple[str, int]]:
    items = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        rel = line.strip()
        if not rel:
            continue
        cls = rel.split("/", 1)[0]
        if cls not in index:
            continue  # the background class, or a class left out by `classes`
        if not (images_dir / rel).is_file():
            raise DataError(
                f"{path}:{line_no} names {rel}, which is not in {images_dir}: "
                "fix the split file or the image folder"
            )
        items.append((rel, index[cls]))
    return items


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
    classes = list_classes(layout.images_dir, config.classes)
    index = {name: i for i, name in enumerate(classes)}
    if layout.split_dir is not None:
        train = _read_split_file(layout.split_dir / "train.txt", layout.images_dir, index)
        test = _read_split_file(layout.split_dir / "test.txt", layout.images_dir, index)
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


# --- decoding and the cache -------------------------------------------------------------------


def decode_image(path: Path, resize: int, size: int) -> torch.Tensor:
    """PIL decode -> RGB -> Resize(resize) -> CenterCrop(size) -> uint8 CHW tensor."""
    from PIL import Image
    from torchvision.transforms import functional as F

    with Image.open(path) as img:
        img = img.convert("RGB")  # Caltech-101 has grayscale (and a few CMYK) JPEGs
        img = F.center_crop(F.resize(img, resize), size)
        array = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tui-trainer"


def cache_key(paths: list[Path], resize: int, size: int) -> str:
    digest = hashlib.sha256(f"v1|{resize}|{size}".encode())
    for p in paths:
        st = p.stat()
        digest.update(f"|{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


@dataclass
class DecodedImages:
    images: torch.Tensor  # uint8 (N, 3, S, S); rows of unreadable files are zeros
    bad: list[int] = field(default_factory=list)  # indices of unreadable files
    from_cache: bool = False


def decode_all(
    paths: list[Path],
    resize: int,
    size: int,
    threads: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
    stop: threading.Event | None = None,
) -> DecodedImages:
    """Decode every file once (threads: PIL releases the GIL), reusing the on-disk cache.

    Raises `Stopped` soon after `stop` is set (each image checks it), caching nothing."""
    cache_file = None
    if use_cache:
        try:
            cache_file = cache_dir() / f"decoded-{cache_key(paths, resize, size)}.pt"
            if cache_file.is_file():
                # mapped, not read: pages load as batches touch them (the test split only at
                # the end), and the kernel may drop them again under memory pressure
                data = torch.load(cache_file, weights_only=True, mmap=True)
                return DecodedImages(data["images"], list(data["bad"]), from_cache=True)
        except (OSError, RuntimeError, KeyError, EOFError):
            pass  # an unreadable cache entry is decoded again and overwritten
    images = torch.zeros((len(paths), 3, size, size), dtype=torch.uint8)
    bad: list[int] = []
    left_out: list[int] = []  # not decoded: the stop came first

    def load(i: int) -> None:
        if stop is not None and stop.is_set():
            left_out.append(i)  # the images queued behind a stop all end here at once
            return
        try:
            images[i] = decode_image(paths[i], resize, size)
        except Exception:  # noqa: BLE001 - any undecodable file is skipped and reported
            bad.append(i)

    workers = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(load, range(len(paths))), 1):
            if left_out:
                continue  # no more progress: the rest are being skipped
            if on_progress and (done % 200 == 0 or done == len(paths)):
                on_progress(done, len(paths))
    if left_out:  # a partial decode is never cached
        raise Stopped(f"stopped after decoding {len(paths) - len(left_out)}/{len(paths)} images")
    bad.sort()
    if cache_file is not None:
        _write_cache(cache_file, images, bad)
    return DecodedImages(images, bad)


def _write_cache(path: Path, images: torch.Tensor, bad: list[int]) -> None:
    """Best effort: a cache we cannot write only costs the next run a decode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"images": images, "bad": bad}, tmp)
        os.replace(tmp, path)
    except OSError:
        pass


@dataclass
class TensorSplit:
    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def build_tensor_splits(
    splits: Splits, decoded: DecodedImages
) -> tuple[dict[str, TensorSplit], list[str]]:
    """Cut the decoded tensor into train/val/test, dropping unreadable files (returned by name)."""
    bad = set(decoded.bad)
    out: dict[str, TensorSplit] = {}
    skipped: list[str] = []
    offset = 0
    for name, items in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        keep = [i for i in range(len(items)) if offset + i not in bad]
        skipped += [items[i][0] for i in range(len(items)) if offset + i in bad]
        if len(keep) == len(items):  # every file readable: a view, not a second copy in memory
            images = decoded.images[offset : offset + len(items)]
        else:
            index = torch.tensor([offset + i for i in keep], dtype=torch.long)
            images = decoded.images.index_select(0, index)
        out[name] = TensorSplit(
            images=images,
            labels=torch.tensor([items[i][1] for i in keep], dtype=torch.long),
            paths=[items[i][0] for i in keep],
        )
        offset += len(items)
    return out, skipped


def normalization(config: RunConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """ImageNet statistics for pretrained weights; plain 0.5/0.5 for random init."""
    if config.weights == "none":
        return PLAIN_MEAN, PLAIN_STD
    return IMAGENET_MEAN, IMAGENET_STD


def batch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """The data order of one epoch follows (seed, epoch) alone, so a resumed run sees the same."""
    if not shuffle:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen)


def iterate_batches(
    split: TensorSplit,
    batch_size: int,
    order: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    pin: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """uint8 image batches (augmented per image when asked) and labels, in the given order.

    The split may live on a GPU; `pin` gathers each batch of a split held on the CPU into pinned
    memory (for a CUDA copy that does not wait). A split already on a device (frozen features
    cached on the GPU) is read where it is: pinned host memory cannot receive a device gather."""
    pin = pin and split.images.device.type == "cpu"
    order = order.to(split.images.device)  # once: not a blocking host-to-GPU copy per batch
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if pin:
            shape = (len(idx), *split.images.shape[1:])
            images = torch.empty(shape, dtype=split.images.dtype, pin_memory=True)
            torch.index_select(split.images, 0, idx, out=images)
        else:
            images = split.images.index_select(0, idx)
        if augment is not None:
            images = augment(images)
        yield images, split.labels.index_select(0, idx)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
