"""Which fast paths a run takes (recorded in its config.json as `fast_paths`), and where its
decoded images live on a GPU.

- decoded_image_cache: images decoded, resized and cropped once into uint8 tensors (data/decode.py).
- channels_last: the model and its inputs in NHWC, what oneDNN and cuDNN run fastest.
- frozen_features: freeze=conv without augmentation trains the head on cached features.
- batched_augment: per-image augmentation of a whole batch at once, on the training device.
- cudnn_benchmark (CUDA): cuDNN picks the fastest convolution algorithms for the shapes.
- data_on_device (CUDA): the uint8 images are uploaded once (pinned, non-blocking) when they
  take under a quarter of the free GPU memory; batches are then gathered on the GPU.
- pinned_memory (CUDA, images too large for the GPU): each batch is gathered into pinned memory.
- non_blocking_copies (CUDA): host-to-device copies do not wait for the GPU.
"""

from __future__ import annotations

import torch

from tui_trainer.config import RunConfig
from tui_trainer.data.batches import TensorSplit
from tui_trainer.train import frozen_features

DEVICE_DATA_SHARE = 0.25  # of the free GPU memory the decoded images may take
UPLOAD_ROWS = 256  # images per pinned upload chunk: bounds the pinned host memory used


def choose(config: RunConfig, device: torch.device, tensors: dict[str, TensorSplit]) -> list[str]:
    paths = ["decoded_image_cache", "channels_last"]
    if frozen_features.applies(config):
        paths.append("frozen_features")
    elif config.augment != "none" and config.aug_p > 0:
        paths.append("batched_augment")
    if device.type == "cuda":
        paths.append("cudnn_benchmark")
        size = sum(s.images.numel() * s.images.element_size() for s in tensors.values())
        free, _ = torch.cuda.mem_get_info(device)
        paths.append("data_on_device" if size < DEVICE_DATA_SHARE * free else "pinned_memory")
        paths.append("non_blocking_copies")
    return paths


def _upload(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    out = torch.empty(tensor.shape, dtype=tensor.dtype, device=device)
    for start in range(0, len(tensor), UPLOAD_ROWS):
        chunk = tensor[start : start + UPLOAD_ROWS].pin_memory()
        out[start : start + UPLOAD_ROWS].copy_(chunk, non_blocking=True)
    return out


def place(
    tensors: dict[str, TensorSplit], device: torch.device, paths: list[str]
) -> dict[str, TensorSplit]:
    """The splits where the epochs read them: on the GPU with data_on_device, else as they are."""
    if "data_on_device" not in paths:
        return tensors
    return {
        name: TensorSplit(_upload(s.images, device), _upload(s.labels, device), s.paths)
        for name, s in tensors.items()
    }
