import urllib.error

import pytest
import torch
import torchvision

from tests.support.runs import stand_in_imagenet
from tui_trainer.train.models import (
    WeightsError,
    apply_freeze,
    build_model,
    imagenet_cache_path,
    set_train_mode,
)


def _trainable(net):
    return {n for n, p in net.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    "model, policy, trained_prefixes",
    [
        ("alexnet", "none", ("features.", "classifier.")),
        ("alexnet", "conv", ("classifier.",)),
        ("alexnet", "fc", ("features.",)),
        ("resnet18", "conv", ("fc.",)),
        ("resnet18", "fc", ("conv1.", "bn1.", "layer")),
        ("resnet50", "conv", ("fc.",)),
    ],
)
def test_freeze_policies_choose_what_trains(model, policy, trained_prefixes):
    net = build_model(model, 7)
    params = apply_freeze(net, model, policy)
    names = _trainable(net)
    assert names and all(n.startswith(trained_prefixes) for n in names)
    assert len(params) == len(names)  # the optimizer gets exactly the trainable tensors
    frozen = {n for n, _ in net.named_parameters()} - names
    if policy == "none":
        assert not frozen
    else:
        assert frozen and not any(n.startswith(trained_prefixes) for n in frozen)


def test_frozen_batchnorm_stays_in_eval_mode():
    net = build_model("resnet18", 4)
    apply_freeze(net, "resnet18", "conv")
    set_train_mode(net, "resnet18", "conv")
    assert not net.bn1.training and not net.layer1[0].bn1.training and net.fc.training


@pytest.mark.parametrize("model", ["alexnet", "resnet18"])
def test_imagenet_weights_load_from_the_torch_home_cache(tmp_path, monkeypatch, model):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    reference = stand_in_imagenet(model)
    assert str(imagenet_cache_path(model)).startswith(str(tmp_path / "th"))
    net = build_model(model, 5, "imagenet")
    head = "classifier.6" if model == "alexnet" else "fc"
    ref_state, state = reference.state_dict(), net.state_dict()
    for key, value in state.items():
        if key.startswith(head):
            assert value.shape[0] == 5
        else:
            assert torch.equal(value, ref_state[key]), key


def test_imagenet_weights_offline_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as info:
        build_model("alexnet", 5, "imagenet")
    message = str(info.value)
    assert "not cached at" in message and "alexnet-owt-7be5be79.pth" in message
    assert str(tmp_path / "empty") in message and "weights=PATH" in message


def test_weights_file_for_another_architecture_is_refused(tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), path)
    with pytest.raises(WeightsError, match="do not fit alexnet"):
        build_model("alexnet", 5, str(path))
    with pytest.raises(WeightsError, match="does not exist"):
        build_model("alexnet", 5, str(tmp_path / "missing.pt"))


def test_weights_file_with_matching_head_loads_whole(tmp_path):
    src = torchvision.models.alexnet(num_classes=5)
    path = tmp_path / "best.pt"
    torch.save({"model": src.state_dict(), "epoch": 3}, path)  # our own best.pt format
    net = build_model("alexnet", 5, str(path))
    assert torch.equal(net.classifier[6].weight, src.classifier[6].weight)
