"""The report's three augmentation pipelines, applied per image with probability p.

torchvision's v2 transforms draw one set of random parameters per call, so calling a pipeline on a
whole batch would jitter, flip or rotate every image the same way (or none). We draw the Bernoulli
mask per image and call the pipeline once per chosen image, so each gets its own parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

# The report names the operations but not their strengths; these are torchvision's usual ranges.
PIPELINES: dict[str, Callable[[], v2.Transform]] = {
    # CS-HF: contrast and saturation jitter, then a horizontal flip.
    "cs-hf": lambda: v2.Compose(
        [v2.ColorJitter(contrast=0.5, saturation=0.5), v2.RandomHorizontalFlip(p=1.0)]
    ),
    # H-RP: hue jitter, then a random perspective warp.
    "h-rp": lambda: v2.Compose(
        [v2.ColorJitter(hue=0.1), v2.RandomPerspective(distortion_scale=0.3, p=1.0)]
    ),
    # B-GS-R: brightness jitter, grayscale (kept 3-channel), random rotation.
    "b-gs-r": lambda: v2.Compose(
        [
            v2.ColorJitter(brightness=0.5),
            v2.Grayscale(num_output_channels=3),
            v2.RandomRotation(degrees=30),
        ]
    ),
}


def make_augmenter(kind: str, p: float) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function uint8 (B, 3, H, W) -> uint8 batch where each image is augmented with prob p."""
    if kind == "none" or p <= 0:
        return None
    pipeline = PIPELINES[kind]()

    def augment(batch: torch.Tensor) -> torch.Tensor:
        chosen = torch.nonzero(torch.rand(batch.shape[0]) < p).flatten().tolist()
        if not chosen:
            return batch
        out = batch.clone()
        for i in chosen:
            out[i] = pipeline(batch[i])
        return out

    return augment


def augment_one(image: torch.Tensor, kind: str) -> torch.Tensor:
    """One image through one pipeline, always (for previews)."""
    return PIPELINES[kind]()(image)
