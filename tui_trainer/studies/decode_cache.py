"""The decode cache filled once before a parallel sweep's children start: one decode per
distinct image list and size among the members to run, so N children do not decode the same
images N times at once; each child then reads its cache entry."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.data.layout import find_layout, make_splits
from tui_trainer.studies.sweep_file import SweepMember


@dataclass(frozen=True)
class DecodeJob:
    """One decode-cache entry the members still to run need: their image list at one size."""

    paths: tuple[Path, ...]
    resize: int
    size: int
    members: tuple[str, ...]


def decode_jobs(members: Sequence[SweepMember], data_dir: Path) -> list[DecodeJob]:
    """One job per distinct (image list, resize, size) among `members`, as `prepare` decodes
    them (the list depends on the classes, the split seed and the validation fraction)."""
    layout = find_layout(data_dir)
    found: dict[tuple, list[str]] = {}
    for member in members:
        config = member.config
        splits = make_splits(layout, config)
        paths = tuple(splits.images_dir / rel for rel, _ in splits.all_items())
        found.setdefault((paths, config.resize, config.image_size), []).append(member.name)
    return [DecodeJob(p, r, s, tuple(names)) for (p, r, s), names in found.items()]


def fill_decode_cache(
    jobs: Sequence[DecodeJob],
    on_job: Callable[[DecodeJob, bool], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Decode each job into the cache (every core); an entry already there is only checked.
    Raises `Stopped` when `stop` is set meanwhile (nothing cached for the job it stopped).
    `on_job(job, done)`: called as a job starts and as it ends."""
    from tui_trainer.data.decode import decode_all  # torch: loaded once a pool decodes, not before

    for job in jobs:
        if on_job is not None:
            on_job(job, False)
        decoded = decode_all(list(job.paths), job.resize, job.size, threads=0, stop=stop)
        del decoded  # the children read the cache: do not hold the images here
        if on_job is not None:
            on_job(job, True)
