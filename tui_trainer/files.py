"""Atomic writes and tolerant reads of the files in a run folder (and the decode cache).

A write goes to a temp file in the same folder, is fsynced and renamed over its target, so a kill
at any moment leaves the old file or the new one, never half of one. Readers skip what they cannot
parse: a line cut short by a kill, a file not written yet.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_jsonl_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint_atomic(path: Path, state: dict[str, Any]) -> None:
    import torch

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb", buffering=0) as fh:
            _torch_save(torch, state, fh.fileno(), tmp)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a line cut short by a kill (or still being written) is skipped."""
    try:
        text = path.read_text()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
