"""A few dozen real Caltech-101 images as a class-per-folder set: links, never copies."""

from __future__ import annotations

from pathlib import Path

from tui_trainer.data.layout import find_layout, list_classes, list_images


def real_subset(real_data: Path, dest: Path, classes: int = 3, per_class: int = 16) -> Path:
    """dest/<class>/<file>: links to the first `per_class` images of the first `classes`
    classes by name. Without split files the run splits them seeded and stratified."""
    images_dir = find_layout(real_data).images_dir
    for name in list_classes(images_dir, classes):
        folder = dest / name
        folder.mkdir(parents=True)
        for image in list_images(images_dir / name)[:per_class]:
            (folder / image.name).symlink_to(image.resolve())  # a relative data path too
    return dest
