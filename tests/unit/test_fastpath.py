import torch

from tests.support.runs import tiny_config
from tui_trainer.data.batches import TensorSplit
from tui_trainer.train import fast_paths as fastpath


def _splits(n: int = 10) -> dict[str, TensorSplit]:
    images = torch.zeros(n, 3, 8, 8, dtype=torch.uint8)  # 1,920 bytes in all
    return {"train": TensorSplit(images, torch.zeros(n, dtype=torch.long), [""] * n)}


def test_cpu_runs_record_the_cache_and_channels_last_only():
    cpu = torch.device("cpu")
    assert fastpath.choose(tiny_config(), cpu, _splits()) == [
        "decoded_image_cache",
        "channels_last",
    ]
    frozen = tiny_config(weights="imagenet", freeze="conv")
    assert "frozen_features" in fastpath.choose(frozen, cpu, _splits())
    assert "batched_augment" in fastpath.choose(tiny_config(augment="h-rp"), cpu, _splits())
    assert fastpath.place(_splits(), cpu, ["channels_last"])["train"].images.device == cpu


def test_cuda_keeps_the_images_on_the_gpu_only_when_they_fit(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10_000, 20_000))
    roomy = fastpath.choose(tiny_config(), cuda, _splits())
    assert roomy[-3:] == ["cudnn_benchmark", "data_on_device", "non_blocking_copies"]
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (4_000, 20_000))
    tight = fastpath.choose(tiny_config(), cuda, _splits())
    assert tight[-3:] == ["cudnn_benchmark", "pinned_memory", "non_blocking_copies"]
