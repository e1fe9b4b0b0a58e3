"""`tui-trainer data check` and `data download`: what is in a dataset folder, and fetching it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.data.layout import DataError, find_layout, make_splits


@dataclass
class DataReport:
    folder: Path
    images_dir: Path
    split_source: str
    classes: list[str]
    counts: dict[str, int]
    modes: Counter = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"data folder:  {self.folder}",
            f"images:       {self.images_dir}",
            f"classes:      {len(self.classes)} ({', '.join(self.classes[:5])}"
            + (", ..." if len(self.classes) > 5 else "")
            + ")",
            f"split:        {'train.txt/test.txt' if self.split_source == 'files' else 'seeded'}",
            "images per split: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()),
            "image modes:  " + ", ".join(f"{m} {n}" for m, n in self.modes.most_common()),
            f"unreadable:   {len(self.unreadable)}",
        ]
        lines += [f"  {p}" for p in self.unreadable]
        return lines


def check_dataset(folder: Path) -> DataReport:
    """Open (not decode) every image: mode counts and unreadable files, plus the split sizes."""
    from PIL import Image

    layout = find_layout(folder)
    splits = make_splits(layout, RunConfig())
    counts = {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}
    report = DataReport(folder, layout.images_dir, splits.split_source, splits.classes, counts)
    for rel, _ in splits.all_items():
        try:
            with Image.open(layout.images_dir / rel) as img:
                img.verify()
                report.modes[img.mode] += 1
        except Exception:  # noqa: BLE001 - whatever PIL cannot read is listed
            report.unreadable.append(rel)
    return report


def download(folder: Path) -> Path:
    """torchvision's Caltech101 downloader. Returns the folder to pass as --data."""
    from torchvision.datasets import Caltech101

    root = folder.parent if folder.name == "caltech101" else folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        Caltech101(root=str(root), download=True)
    except Exception as exc:  # noqa: BLE001 - offline, moved files, missing gdown...
        raise DataError(
            f"could not download Caltech-101 into {root} ({type(exc).__name__}: {exc}): "
            "check the network, or unpack 101_ObjectCategories there by hand"
        ) from None
    return root / "caltech101"
