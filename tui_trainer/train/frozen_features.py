"""Frozen-feature cache: when only a head trains on top of a frozen feature extractor.

With freeze=conv the extractor stays in eval mode (models.set_train_mode) and gets no gradients,
and without augmentation it sees the same images every epoch: its outputs never change. So they
are computed once per split, and every epoch trains and evaluates the head alone on them. The head
does what the whole model did after the extractor (dropout included, drawing the same random
numbers), so metrics match the slow path up to float noise.

AlexNet: extractor `features`, head `avgpool` + `classifier`. ResNet: extractor everything up to
the pooled 512/2048 vector, head `fc`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tui_trainer.config import RunConfig, eval_batch
from tui_trainer.data.batches import TensorSplit, iterate_batches
from tui_trainer.train.models import frozen_part


def applies(config: RunConfig) -> bool:
    """Only the head trains and every epoch feeds the extractor the same images."""
    return config.freeze == "conv" and (config.augment == "none" or config.aug_p == 0)


class AlexNetHead(nn.Module):
    """torchvision's AlexNet after `features`, sharing the model's modules. `features` is an
    identity so models.set_train_mode treats it like the whole model (frozen part in eval)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.features = nn.Identity()
        self.avgpool = net.avgpool
        self.classifier = net.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))


class ResNetHead(nn.Module):
    """A ResNet's `fc` on the pooled features, sharing the model's layer."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.fc = net.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def split_model(
    net: nn.Module, model: str
) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
    """(frozen extractor, trainable head) of a torchvision AlexNet or ResNet: the extractor is
    what freeze=conv freezes (models.frozen_part), flattened for a ResNet's `fc`."""
    trunk = nn.Sequential(*frozen_part(net, model, "conv"))
    if model == "alexnet":
        return trunk, AlexNetHead(net)
    return lambda x: torch.flatten(trunk(x), 1), ResNetHead(net)


@torch.no_grad()
def extract(
    extractor: Callable[[torch.Tensor], torch.Tensor],
    split: TensorSplit,
    batch_size: int,
    to_input: Callable[[torch.Tensor], torch.Tensor],
    autocast: Callable[[], object],
    check_stop: Callable[[], None],
) -> TensorSplit:
    """The extractor's outputs for every image of a split, in order, on the input's device."""
    outputs = []
    for images, _ in iterate_batches(split, batch_size, torch.arange(len(split))):
        check_stop()
        with autocast():
            outputs.append(extractor(to_input(images)).contiguous())
    features = torch.cat(outputs) if outputs else torch.empty(0)
    return TensorSplit(features, split.labels, split.paths)


def cache_frozen_features(
    net: nn.Module,
    config: RunConfig,
    splits: dict[str, TensorSplit],
    to_input: Callable[[torch.Tensor], torch.Tensor],
    autocast: Callable[[], object],
    say: Callable[[str], None],
    check_stop: Callable[[], None],
) -> tuple[nn.Module, dict[str, TensorSplit]]:
    """(head, splits of features): what the epochs train and evaluate instead of the model."""
    extractor, head = split_model(net, config.model)
    net.eval()  # the frozen part's train-time mode too (BatchNorm keeps ImageNet's statistics)
    out = {}
    for name, split in splits.items():
        say(f"computing frozen features of the {name} split ({len(split)} images)")
        out[name] = extract(extractor, split, eval_batch(config), to_input, autocast, check_stop)
    return head, out
