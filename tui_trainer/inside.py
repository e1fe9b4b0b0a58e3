"""Writing under a shared runs folder without being led out of it.

Anyone who can write to a shared runs folder can plant a symlink (or a FIFO) where this program
will write next: `.sweep-logs/<sweep>/<member>.log`, `.detached/`, `.claims/`. Every folder on
the way is made with `mkdir` and checked with `lstat` (a link or a non-folder is refused), and
the file itself is opened with O_NOFOLLOW and O_NONBLOCK (a FIFO would block the open) and must
be a regular file. Names taken from input (a sweep member's `name`) become one path component by
`file_name`: no separator, no `..`, no control character, short enough for any file system.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

from tui_trainer.errors import UserError


class PlantedPath(UserError, OSError):
    """A link, FIFO or other non-plain entry where a write under the runs folder would go:
    bad input (one line, exit 2) to a front end, an OSError to code that expects one."""


SAFE = "-_.=+,"  # besides ASCII letters and digits: what grid member names hold (lr=0.05)
NAME_MAX = 120  # bytes: well under the usual 255, room for a suffix and a temp file's prefix


def file_name(label: str, fallback: str = "run") -> str:
    """`label` as one safe path component: letters, digits, `-_.=+,` (anything else a `-`), no
    leading dot or dash, at most NAME_MAX bytes. A label changed on the way gets a short hash
    of the original, so two labels never share a file."""
    safe = "".join(ch if ch.isalnum() and ch.isascii() or ch in SAFE else "-" for ch in label)
    safe = safe.strip("-.")[:NAME_MAX] or fallback
    if safe != label:
        digest = hashlib.sha1(label.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe[: NAME_MAX - 9]}-{digest}"
    return safe


def refuse_links(root: Path, *parts: str) -> None:
    """UserError when a folder of root/parts (all but the last) that already exists is a link
    or not a folder, or the last exists and is not a regular file. Writes nothing."""
    path = Path(root)
    for i, part in enumerate(parts):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        except OSError:
            continue
        last = i == len(parts) - 1
        if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) if last else stat.S_ISDIR(mode)):
            raise _planted(path, root, "file" if last else "folder")


def _planted(path: Path, root: Path, kind: str) -> PlantedPath:
    return PlantedPath(
        f"{path} is a link or not a plain {kind}: refused, a write there could leave {root}; "
        "remove it"
    )


def folder_inside(root: Path, *parts: str) -> Path:
    """root/parts, each folder made if missing; PlantedPath when one is a link or not a
    folder. `root` itself is the user's choice and may be a link."""
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\0" in part:
            raise ValueError(f"{part!r} is not one path component")
        path = path / part
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise _planted(path, root, "folder")
    return path


def open_append(path: Path) -> int:
    """A descriptor appending to `path` (made if missing, with the umask's permissions);
    PlantedPath when it is a link, a FIFO or anything but a regular file."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a link; a FIFO nobody reads
            raise _planted(path, Path(path).parent, "file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _planted(path, Path(path).parent, "file")
    os.set_blocking(fd, True)
    return fd
