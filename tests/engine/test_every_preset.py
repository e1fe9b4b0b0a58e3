"""Every shipped preset trains one tiny epoch (ImageNet ones on stand-in weights in TORCH_HOME)."""

import pytest

from tests.support.runs import stand_in_imagenet, tiny_config
from tui_trainer.config import list_presets
from tui_trainer.runs.launch import start_run

PRESETS = {p.name: p for p in list_presets()}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_runs_one_tiny_epoch(name, tiny_data, tmp_path):
    preset = PRESETS[name]
    if preset.config.weights == "imagenet":
        stand_in_imagenet(preset.config.model)
    tiny = tiny_config(epochs=1).to_dict()
    keep = ("model", "weights", "freeze", "augment", "aug_p", "lr", "momentum", "gamma")
    cfg = preset.config.with_overrides({k: v for k, v in tiny.items() if k not in keep})
    run, ended = start_run(
        cfg, preset=name, overrides={}, data_dir=tiny_data, runs_dir=tmp_path / "runs"
    )
    assert ended.status == "completed", ended.message
    assert run.meta()["preset"] == name and run.meta()["config"]["freeze"] == preset.config.freeze
    assert len(run.epochs()) == 1 and run.summary()["test_acc"] is not None
