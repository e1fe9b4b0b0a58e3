"""The exceptions every layer shares: bad input (one line, exit 2), a run folder that cannot be
written (disk full, quota, read-only, no permission) and a stop on request."""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path


class UserError(Exception):
    """Bad input from the user: front ends print the message on one line and exit 2."""


class ConfigError(UserError):
    """A config key, value, preset or sweep file that is wrong."""


class Stopped(Exception):
    """The run's stop event was set (raised inside the core; front ends see `interrupted`)."""


# what the user can do about each errno; anything else: "fix the folder"
_STORAGE_HINTS = {
    errno.ENOSPC: "free space",
    errno.EDQUOT: "free space or raise the quota",
    errno.EROFS: "make {folder} writable",
    errno.EACCES: "make {folder} writable",
    errno.EPERM: "make {folder} writable",
}

# the errnos of a folder that cannot be written, told as StorageError wherever they come from
STORAGE_ERRNOS = frozenset(_STORAGE_HINTS)


class StorageError(UserError):
    """A file of a run folder could not be written (an OSError from a write, fsync, close or
    rename). The message is one line: the file, the reason, the free space left on its file
    system and how to continue (`tui-trainer run --resume ID`, ID the folder's name).
    The previous last.pt is untouched (atomic writes), so the run stays resumable."""

    def __init__(self, path: Path, exc: OSError) -> None:
        self.path = Path(path)
        self.errno = exc.errno
        self.strerror = exc.strerror or str(exc)
        self.free_bytes = free_bytes(self.path.parent)
        folder = self.path.parent
        hint = _STORAGE_HINTS.get(exc.errno or 0, "fix {folder}").format(folder=folder)
        free = (
            "free space unknown"
            if self.free_bytes is None
            else f"{_size(self.free_bytes)} free on that file system"
        )
        super().__init__(
            f"cannot write {self.path} ({self.strerror}; {free}): "
            f"{hint}, then `tui-trainer run --resume {folder.name}`"
        )


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Writes to `path` inside the block: an OSError (at write, flush, fsync, close or rename)
    becomes a StorageError naming it."""
    try:
        yield
    except OSError as exc:
        raise StorageError(path, exc) from exc


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the file system holding `folder` (or its nearest existing parent)."""
    for place in (Path(folder), *Path(folder).parents):
        try:
            return shutil.disk_usage(place).free
        except OSError:
            continue
    return None


def _size(n: int) -> str:
    if n >= 10**9:
        return f"{n / 10**9:.1f} GB"
    return f"{n / 10**6:.0f} MB" if n >= 10**6 else f"{n / 10**3:.0f} kB"
