"""Decode every image once into one uint8 tensor kept in memory, cached on disk.

The tensor is keyed by the file list, sizes and mtimes, so epochs read no JPEGs and need no
DataLoader worker processes: forking workers from a threaded app (the TUI) can deadlock.

A cache entry is read with `weights_only=True` (tensors and plain types: no code runs) and
checked before it is used: its key, image count, size and dtype must be the ones asked for. An
entry that fails (cut short, another entry's file, a hand edit) is decoded again and rewritten,
with one warning; entries written before the key and count were stored pass on their shape.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tui_trainer.errors import Stopped
from tui_trainer.files import cache_dir, load_tensors, save_checkpoint_atomic


def decode_image(path: Path, resize: int, size: int) -> torch.Tensor:
    """PIL decode -> RGB -> Resize(resize) -> CenterCrop(size) -> uint8 CHW tensor."""
    from PIL import Image
    from torchvision.transforms import functional as F

    with Image.open(path) as img:
        img = img.convert("RGB")  # Caltech-101 has grayscale (and a few CMYK) JPEGs
        img = F.center_crop(F.resize(img, resize), size)
        array = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


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
    warnings: list[str] = field(default_factory=list)  # e.g. a damaged cache entry, rebuilt


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
    cache_file, key, warnings = None, "", []
    if use_cache:
        cache_file, key, cached = _read_cache(paths, resize, size)
        if isinstance(cached, DecodedImages):
            return cached
        if cached:  # there was an entry, but not a usable one
            warnings.append(f"decode cache {cache_file} is damaged ({cached}): decoding again")
    decoded = _decode_files(paths, resize, size, threads, on_progress, stop)
    decoded.warnings = warnings
    if cache_file is not None:
        _write_cache(cache_file, key, decoded.images, decoded.bad)
    return decoded


def _read_cache(
    paths: list[Path], resize: int, size: int
) -> tuple[Path | None, str, DecodedImages | str | None]:
    """(the cache file for these images, its key, its contents if it holds them; else why not:
    a reason when there is an entry that cannot be used, None when there is none). No file when
    the images cannot be stat'ed: they are decoded (and fail) without caching."""
    try:
        key = cache_key(paths, resize, size)
        cache_file = cache_dir() / f"decoded-{key}.pt"
    except (OSError, RuntimeError):  # a file gone, or no home folder to cache in
        return None, "", None
    if not cache_file.is_file():
        return cache_file, key, None
    try:
        # mapped, not read: pages load as batches touch them (the test split only at
        # the end), and the kernel may drop them again under memory pressure
        data = load_tensors(cache_file, mmap=True)
    except Exception as exc:  # noqa: BLE001 - cut short, not a torch file, not ours
        return cache_file, key, f"unreadable: {type(exc).__name__}"
    problem = _entry_problem(data, key, len(paths), size)
    if problem:
        return cache_file, key, problem
    return cache_file, key, DecodedImages(data["images"], list(data["bad"]), from_cache=True)


def _entry_problem(data: object, key: str, count: int, size: int) -> str:
    """Why a loaded cache entry does not hold these images ("" when it does)."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), torch.Tensor):
        return "no image tensor"
    if data.get("key", key) != key:
        return "another entry's key"
    images, bad = data["images"], data.get("bad")
    if images.dtype != torch.uint8 or tuple(images.shape) != (count, 3, size, size):
        return f"{tuple(images.shape)} {images.dtype}, expected {(count, 3, size, size)} uint8"
    if data.get("count", count) != count:
        return f"{data.get('count')} images, expected {count}"
    if not isinstance(bad, list) or not all(isinstance(i, int) and 0 <= i < count for i in bad):
        return "bad list of unreadable images"
    return ""


def _decode_files(paths, resize, size, threads, on_progress, stop) -> DecodedImages:
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
    return DecodedImages(images, sorted(bad))


def _write_cache(path: Path, key: str, images: torch.Tensor, bad: list[int]) -> None:
    """Best effort: a cache we cannot write only costs the next run a decode. The key, count and
    size go in with the images, for `_entry_problem` to check."""
    entry = {
        "images": images,
        "bad": bad,
        "key": key,
        "count": len(images),
        "size": images.shape[-1],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint_atomic(path, entry)
    except (OSError, RuntimeError):  # torch's writer reports a full disk as a RuntimeError
        pass
