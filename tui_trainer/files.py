"""Atomic writes and tolerant reads of the files in a run folder (and the decode cache).

A write goes to a temp file in the same folder, is fsynced and renamed over its target, so a kill
at any moment leaves the old file or the new one, never half of one. Readers skip what they cannot
parse: a line cut short by a kill, a file not written yet.

Temp files are created with mode 0o666 and so get the umask's permissions, like any file the
process opens (metrics.jsonl): a run folder shared by a group reads the same whichever file it
is. (`tempfile.mkstemp` would make them 0600; changing the umask instead would race with the
console's other threads.)
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
import warnings
from pathlib import Path
from typing import Any

CACHE_ENV = "TUI_TRAINER_CACHE"

# torch warns (on stderr, over the one-line error) when a refused file is a plain pickle
warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)


def cache_dir() -> Path:
    """The user cache folder: $TUI_TRAINER_CACHE, else $XDG_CACHE_HOME/tui-trainer, else
    ~/.cache/tui-trainer (the decode cache, what the run locks saw of other hosts)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tui-trainer"


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_jsonl_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def _open_temp(path: Path) -> tuple[int, Path]:
    """A new file with a unique name next to `path`, opened for writing with the umask's
    permissions: (its descriptor, its path)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name next to {path}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint_atomic(path: Path, state: dict[str, Any]) -> None:
    import torch

    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "wb", buffering=0) as fh:
            _torch_save(torch, state, fh.fileno(), str(tmp))
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _torch_save(torch, state: dict[str, Any], fd: int, name: str) -> None:
    """torch.save into `fd`; a failed write raises its own OSError (ENOSPC, EDQUOT...). torch's
    zip writer hides it: closing the archive after the failure raises a RuntimeError
    ("unexpected pos ...") in its place."""
    sink = _FullWrites(fd, name)
    try:
        torch.save(state, sink)
    except RuntimeError:
        if sink.error is None:
            raise
        raise sink.error from None


class _FullWrites:
    """A file torch.save writes to: every write complete, or the OSError that stopped it (kept
    in `error`). `name`: the temp file's path, as a file object's."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.error: OSError | None = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            self.error = self.error or exc
            raise
        return len(data)

    def flush(self) -> None:
        pass


def read_plain_text(path: Path) -> str:
    """A regular file's text, bytes that are not UTF-8 replaced. OSError for anything else: a
    FIFO planted in a shared runs folder would block a plain read forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read().decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object, or {} for anything else (missing, cut short, nested too deep, not an
    object, not a file): a reader of a shared runs folder never stops at one bad file."""
    try:
        data = json.loads(read_plain_text(path))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a line cut short by a kill (or still being written) is skipped, and
    so is one that is not UTF-8 or JSON."""
    try:
        text = read_plain_text(path)
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def load_tensors(path: Path, mmap: bool = False) -> Any:
    """The one way the project reads a .pt file: `torch.load(..., weights_only=True)`, so only
    tensors and plain types come back and nothing in the file runs (a pickled object is refused;
    `load_error_reason` says so in one line)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def load_error_reason(exc: BaseException) -> str:
    """One line saying why `torch.load(..., weights_only=True)` refused a file (torch's own
    message runs to many lines; a text file gets an IndexError, an empty one an EOFError)."""
    if isinstance(exc, OSError):
        return f"cannot read it: {exc.strerror or type(exc).__name__}"
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found:
        return (
            f"it holds a Python object ({found.group(1)}), not only tensors; "
            "refused: loading it could run code"
        )
    return "not a file written by torch.save, or cut short"
