"""Networks (AlexNet, ResNet18, ResNet50), their weights, and the report's freezing policies.

ImageNet weights come through torchvision's own loader, which keeps them in the torch hub cache
(`$TORCH_HOME/hub/checkpoints/<file>`); offline and not cached, we say exactly where the file goes.
"""

from __future__ import annotations

import contextlib
import io
import urllib.error
from pathlib import Path

import torch
import torchvision
from torch import nn

from tui_trainer.errors import UserError
from tui_trainer.files import load_error_reason, load_tensors


class WeightsError(UserError):
    pass


def _imagenet_weights(model: str):
    from torchvision.models import AlexNet_Weights, ResNet18_Weights, ResNet50_Weights

    # V1 everywhere: the weights `pretrained=True` gave when the report was written.
    return {
        "alexnet": AlexNet_Weights.IMAGENET1K_V1,
        "resnet18": ResNet18_Weights.IMAGENET1K_V1,
        "resnet50": ResNet50_Weights.IMAGENET1K_V1,
    }[model]


def imagenet_cache_path(model: str) -> Path:
    """Where torchvision looks for (and downloads) the ImageNet weights of `model`."""
    url = _imagenet_weights(model).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def load_imagenet_state_dict(model: str) -> dict[str, torch.Tensor]:
    weights = _imagenet_weights(model)
    path = imagenet_cache_path(model)
    try:
        # torch hub prints `Downloading: URL to PATH` first (stdout or stderr, by version):
        # offline, that stray line would sit next to our one-line error.
        sink = io.StringIO()
        # weights_only: torch hub's default is False, and the hub cache is a shared folder
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            return weights.get_state_dict(progress=False, weights_only=True)
    except (urllib.error.URLError, OSError, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(
            f"ImageNet weights for {model} are not cached at {path} and could not be downloaded "
            f"({reason}): copy {path.name} there (or set TORCH_HOME), or use --set weights=PATH"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the cached file is damaged or not weights
        raise WeightsError(
            f"ImageNet weights cached at {path} are not a torch state dict "
            f"({load_error_reason(exc)}): delete the file to download it again"
        ) from None


def _constructor(model: str):
    return {
        "alexnet": torchvision.models.alexnet,
        "resnet18": torchvision.models.resnet18,
        "resnet50": torchvision.models.resnet50,
    }[model]


def head_name(model: str) -> str:
    """The state-dict prefix of the last (class-count dependent) layer."""
    return "classifier.6" if model == "alexnet" else "fc"


def _replace_head(net: nn.Module, model: str, num_classes: int) -> None:
    if model == "alexnet":
        old = net.classifier[6]
        net.classifier[6] = nn.Linear(old.in_features, num_classes)
    else:
        net.fc = nn.Linear(net.fc.in_features, num_classes)


def _read_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist: use none, imagenet or a .pt path")
    try:
        data = load_tensors(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same answer
        raise WeightsError(
            f"weights file {path} is not a torch state dict ({load_error_reason(exc)}): "
            "use none, imagenet or a .pt file of tensors"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]  # one of our own checkpoints (best.pt / last.pt)
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors")
    return data


def _load_into(net: nn.Module, state: dict[str, torch.Tensor], model: str, source: str) -> None:
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = (
            (missing and f"missing {missing[0]}")
            or (unexpected and f"unexpected {unexpected[0]}")
            or f"shape of {wrong[0]}"
        )
        raise WeightsError(
            f"weights {source} do not fit {model} ({detail}): "
            "use weights saved from the same architecture"
        )
    net.load_state_dict(state)


def build_model(model: str, num_classes: int, weights: str = "none") -> nn.Module:
    """`model` with a `num_classes`-way head, from random init, ImageNet, or a state-dict file."""
    make = _constructor(model)
    if weights == "none":
        return make(num_classes=num_classes)
    if weights == "imagenet":
        state, source = load_imagenet_state_dict(model), f"ImageNet ({model})"
    else:
        state, source = _read_state_dict_file(Path(weights)), f"file {weights}"
    head_weight = state.get(f"{head_name(model)}.weight")
    if head_weight is not None and head_weight.shape[0] == num_classes:
        net = make(num_classes=num_classes)  # e.g. a best.pt of a run with the same classes
        _load_into(net, state, model, source)
        return net
    classes_in_file = head_weight.shape[0] if head_weight is not None else 1000
    net = make(num_classes=classes_in_file)
    _load_into(net, state, model, source)
    _replace_head(net, model, num_classes)
    return net


def frozen_part(net: nn.Module, model: str, policy: str) -> list[nn.Module]:
    """The modules a policy freezes. conv: the feature extractor; fc: the classifier.

    For AlexNet `fc` freezes all three FC layers including the new 101-way head, as the report did
    (its FINAL_TRAIN_LOSS of 2.6 shows the head was not trained); for ResNets `fc` is the head.
    """
    if policy == "none":
        return []
    if model == "alexnet":
        return [net.features] if policy == "conv" else [net.classifier]
    head = net.fc
    if policy == "fc":
        return [head]
    return [m for name, m in net.named_children() if name != "fc"]


def apply_freeze(net: nn.Module, model: str, policy: str) -> list[nn.Parameter]:
    """Turn off gradients for the frozen part; return the parameters the optimizer should train."""
    for module in frozen_part(net, model, policy):
        for p in module.parameters():
            p.requires_grad_(False)
    return [p for p in net.parameters() if p.requires_grad]


def set_train_mode(net: nn.Module, model: str, policy: str) -> None:
    """Train mode, but a frozen feature extractor stays in eval mode so its BatchNorm statistics
    stay ImageNet's: frozen means frozen (and its outputs can be cached)."""
    net.train()
    if policy == "conv":
        for module in frozen_part(net, model, policy):
            module.eval()
