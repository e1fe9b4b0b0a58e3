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
    # on a CPU, the input's memory kept from batch to batch, by dtype (see `_on_cpu`)
    buffers: dict[torch.dtype, torch.Tensor] = field(default_factory=dict, compare=False)
    rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, compare=False)

    def to_input(self, images: torch.Tensor, augment=None) -> torch.Tensor:
        """uint8 images -> (augmented on the device) normalised float NHWC. Cached frozen
        features (float already) are the head's input as they are."""
        x = images.to(self.device, non_blocking=True)
        if images.dtype != torch.uint8:
            return x
        if augment is not None:
            x = augment(x)
        if self.device.type == "cpu":
            return self._on_cpu(x)
        # NHWC while still uint8, then one float tensor: (x / 255 - mean) / std in two passes
        x = x.contiguous(memory_format=torch.channels_last).float()
        return x.mul_(self.scale).sub_(self.shift)

    def _on_cpu(self, x: torch.Tensor) -> torch.Tensor:
        """The same values into memory kept from batch to batch: a fresh 150 MB tensor a batch
        costs as much in page faults as the arithmetic. Under bf16 autocast, handed over in
        bf16 (the cast the first layer would make). It overwrites the previous batch's input,
        whose step or evaluation is over by then."""
        out = self._buffer(torch.float32, x.shape)
        out.copy_(x)  # NCHW uint8 -> NHWC float
        # x * scale - shift in one pass over rows of W x C values: broadcast per channel over
        # NHWC memory its inner loop is 3 values long, three times slower at 224 px
        n, c, h, w = out.shape
        rows = out.permute(0, 2, 3, 1).view(n * h, w * c)
        scale, shift = self._per_row(w)
        torch.addcmul(shift, rows, scale, out=rows)
        if self.dtype != torch.bfloat16:
            return out
        return self._buffer(torch.bfloat16, x.shape).copy_(out)

    def _per_row(self, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, -shift) repeated along a row of `width` NHWC pixels."""
        held = self.rows.get(width)
        if held is None:
            held = (self.scale.view(-1).repeat(width), -self.shift.view(-1).repeat(width))
            self.rows[width] = held
        return held

    def _buffer(self, dtype: torch.dtype, shape: torch.Size) -> torch.Tensor:
        held = self.buffers.get(dtype)
        if held is None or held.shape[0] < shape[0] or held.shape[1:] != shape[1:]:
            held = torch.empty(shape, dtype=dtype, memory_format=torch.channels_last)
            self.buffers[dtype] = held
        return held[: shape[0]]

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
