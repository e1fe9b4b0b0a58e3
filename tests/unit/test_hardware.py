import pytest
import torch

from tui_trainer.errors import UserError
from tui_trainer.train.hardware import check_precision, cpu_flags, hardware_name, resolve_device

CPU = torch.device("cpu")


def test_the_cpu_is_named_by_its_model_and_a_digest_of_its_flags(monkeypatch):
    from tui_trainer.train import hardware

    name = hardware_name(CPU)
    assert name.endswith(")") and "(flags " in name
    if cpu_flags():  # another flag set (another VM of the same model) is another machine;
        # a made-up flag: on a CPU with AMX, adding amx_bf16 would change nothing
        monkeypatch.setattr(hardware, "cpu_flags", lambda: cpu_flags() | {"not_a_real_flag"})
        assert hardware_name(CPU) != name
        assert hardware_name(CPU).split(" (flags ")[0] == name.split(" (flags ")[0]


def test_explicit_precision_is_kept_and_fp16_on_cpu_refused():
    assert check_precision("bf16", CPU) == "bf16"
    assert check_precision("fp32", CPU) == "fp32"
    with pytest.raises(UserError, match="fp16 is for GPUs"):
        check_precision("fp16", CPU)


def test_cuda_without_a_gpu_is_a_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA GPU is visible: use --device cpu"):
        resolve_device("cuda")
    assert resolve_device("cpu") == CPU
