"""Before a run folder exists: hardware resolved, weights loaded, data found and decoded
(`prepare`). All bad input fails here."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.data.batches import TensorSplit, build_tensor_splits, seed_everything
from tui_trainer.data.decode import decode_all
from tui_trainer.data.layout import DataError, Splits, find_layout, make_splits
from tui_trainer.events import EventCallback, Log
from tui_trainer.train import fast_paths
from tui_trainer.train.hardware import check_precision
from tui_trainer.train.models import build_model
from tui_trainer.train.precision_probe import PrecisionChoice, ProbeResult, decide
from tui_trainer.train.topology import Topology


@dataclass
class Prepared:
    """Everything checked and loaded before a run folder exists (bad input fails here)."""

    config: RunConfig
    data_dir: Path
    splits: Splits
    tensors: dict[str, TensorSplit]
    skipped: list[str]
    device: torch.device
    precision: str
    model: nn.Module
    fast_paths: list[str] = field(default_factory=list)  # fast_paths.choose; in config.json
    topology: Topology = field(default_factory=Topology)  # the run's processes (torchrun)
    precision_probe: ProbeResult | None = None  # what precision=auto measured; in config.json


def _note(message: str, level: str = "info") -> Log:
    """What preparation says: before a fresh run's folder exists, so it names no run."""
    return Log(run_id="", message=message, level=level)


def prepare(
    config: RunConfig,
    data_dir: Path,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    topology: Topology | None = None,
    precision: PrecisionChoice | None = None,
) -> Prepared:
    """Resolve hardware, load weights, find and decode the data. Raises UserError on bad input,
    and `Stopped` when `stop` is set during the decode (which can take minutes the first time).
    `topology`: the run's processes; joined here when not given (under torchrun: this rank's GPU,
    process group joined). `precision`: the one decided for the run (a resume's recorded one, or
    rank 0's under torchrun); decided here when not given (`precision=auto` measures, on a
    model of its own, leaving the RNG as it was)."""
    say = on_event or (lambda e: None)
    topology = Topology.join(config) if topology is None else topology
    device = topology.device
    layout = find_layout(data_dir)
    splits = make_splits(layout, config)
    check_precision(precision.precision if precision else config.precision, device)
    seed_everything(config.seed)  # the random init follows the seed
    model = build_model(config.model, len(splits.classes), config.weights)
    items = splits.all_items()
    paths = [splits.images_dir / rel for rel, _ in items]
    say(_note(f"decoding {len(paths)} images at {config.image_size}px"))
    decoded = decode_all(
        paths,
        config.resize,
        config.image_size,
        threads=config.threads,
        on_progress=lambda done, total: say(_note(f"decoded {done}/{total} images")),
        stop=stop,
    )
    for message in decoded.warnings:  # e.g. a damaged decode-cache entry, rebuilt
        say(_note(message, "warning"))
    tensors, skipped = build_tensor_splits(splits, decoded)
    _require_readable(tensors, skipped, splits.classes, data_dir)
    for rel in skipped:
        say(_note(f"skipped unreadable image {splits.images_dir / rel}", "warning"))
    # after the decode: a stop during it has written nothing, the probe's cache included
    world = topology.world_size if topology.active else 1  # the probe times a rank's batch
    choice = precision or decide(
        config, device, topology.threads_per_rank(config.threads), stop, say, world
    )
    paths = fast_paths.choose(config, device, tensors)
    return Prepared(
        config,
        data_dir,
        splits,
        tensors,
        skipped,
        device,
        choice.precision,
        model,
        paths,
        topology,
        choice.probe,
    )


def _require_readable(
    tensors: dict[str, TensorSplit], skipped: list[str], classes: list[str], data_dir: Path
) -> None:
    """Every split keeps an image, and every class a training image, once unreadable files are
    dropped. Raised before the warnings: the error alone says it, in one line."""
    for name, split in tensors.items():
        if len(split) == 0:
            raise DataError(
                f"no readable images left in the {name} split of {data_dir} ({len(skipped)} "
                "unreadable files): check the image files"
            )
    seen = set(tensors["train"].labels.tolist())
    unseen = [name for i, name in enumerate(classes) if i not in seen]
    if unseen:
        raise DataError(
            f"class {unseen[0]!r} has no readable training image in {data_dir} "
            f"({len(skipped)} unreadable files): check its image files or leave it out"
        )
