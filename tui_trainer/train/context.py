"""What every batch needs on its way into the model, computed once per run (`make_context`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from tui_trainer.data.batches import normalization
from tui_trainer.train.hardware import autocast_dtype
from tui_trainer.train.topology import Topology

if TYPE_CHECKING:
    from tui_trainer.train.preparation import Prepared


@dataclass(frozen=True)
class BatchContext:
    """Device, autocast dtype, normalisation, augmenter, pinning and the processes' topology."""

    device: torch.device
    dtype: torch.dtype | None  # autocast's; None: fp32
    # (x / 255 - mean) / std as x * scale - shift, computed once, not per batch
    scale: torch.Tensor
    shift: torch.Tensor
    augment: Callable[[torch.Tensor], torch.Tensor] | None
    pin: bool
    topology: Topology = field(default_factory=Topology)

    def to_input(self, images: torch.Tensor, augment=None) -> torch.Tensor:
        """uint8 images -> (augmented on the device) normalised float NHWC. Cached frozen
        features (float already) are the head's input as they are."""
        x = images.to(self.device, non_blocking=True)
        if images.dtype != torch.uint8:
            return x
        if augment is not None:
            x = augment(x)
        # NHWC while still uint8, then one float tensor: (x / 255 - mean) / std in two passes
        x = x.contiguous(memory_format=torch.channels_last).float()
        return x.mul_(self.scale).sub_(self.shift)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)


def make_context(prep: Prepared) -> BatchContext:
    """The batch context of a prepared run."""
    from tui_trainer.data.augment import make_augmenter

    cfg, device = prep.config, prep.device
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in normalization(cfg))
    return BatchContext(
        device=device,
        dtype=autocast_dtype(prep.precision),
        scale=1.0 / (255.0 * std),
        shift=mean / std,
        augment=make_augmenter(cfg.augment, cfg.aug_p),
        pin="pinned_memory" in prep.fast_paths,
        topology=prep.topology,
    )
