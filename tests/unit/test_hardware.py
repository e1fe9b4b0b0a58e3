import pytest
import torch

from tui_trainer.errors import UserError
from tui_trainer.train.hardware import cpu_flags, resolve_device, resolve_precision

CPU = torch.device("cpu")


def test_auto_precision_picks_bf16_only_with_amx():
    assert resolve_precision("auto", CPU, {"avx2", "amx_bf16", "amx_tile"}) == "bf16"
    assert resolve_precision("auto", CPU, {"avx2", "avx512f", "avx512_bf16"}) == "fp32"
    assert resolve_precision("auto", CPU, set()) == "fp32"


def test_auto_precision_on_this_machine_follows_its_cpu_flags():
    expected = "bf16" if "amx_bf16" in cpu_flags() else "fp32"
    assert resolve_precision("auto", CPU) == expected


def test_explicit_precision_is_kept_and_fp16_on_cpu_refused():
    assert resolve_precision("bf16", CPU, set()) == "bf16"
    with pytest.raises(UserError, match="fp16 is for GPUs"):
        resolve_precision("fp16", CPU)


def test_cuda_without_a_gpu_is_a_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA GPU is visible: use --device cpu"):
        resolve_device("cuda")
    assert resolve_device("cpu") == CPU
