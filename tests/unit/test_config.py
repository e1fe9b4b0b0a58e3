from pathlib import Path

import pytest

from tui_trainer.config import (
    RunConfig,
    build_config,
    list_presets,
    load_preset,
    load_preset_file,
    parse_set_options,
)
from tui_trainer.errors import ConfigError

REQUIRED_PRESETS = {
    "scratch",
    "finetune",
    "freeze-conv",
    "freeze-fc",
    "aug-cs-hf",
    "aug-h-rp",
    "aug-b-gs-r",
    "resnet18",
    "resnet18-freeze",
    "resnet50",
    "resnet50-freeze",
}


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("lr", "-0.1", "lr=-0.1 must be > 0"),
        ("lr", "fast", "is not a number"),
        ("epochs", "0", "epochs=0 must be >= 1"),
        ("epochs", "2.5", "is not an integer"),
        ("batch_size", "0", "batch_size=0 must be >= 1"),
        ("val_fraction", "1", "must be in (0, 1)"),
        ("val_fraction", "0", "must be in (0, 1)"),
        ("gamma", "0", "gamma=0.0 must be in (0, 1]"),
        ("model", "vgg16", "model='vgg16' is not valid: choose one of alexnet, resnet18, resnet50"),
        ("freeze", "head", "freeze='head' is not valid"),
        ("augment", "mixup", "augment='mixup' is not valid"),
        ("device", "tpu", "device='tpu' is not valid"),
        ("precision", "int8", "precision='int8' is not valid"),
        ("aug_p", "1.5", "aug_p=1.5 must be in [0, 1]"),
        ("image_size", "40", "too small for alexnet"),
        ("resize", "10", "resize=10 must be >= image_size"),
        ("nonsense", "1", "unknown config key 'nonsense'"),
    ],
)
def test_bad_values_are_refused_with_a_message_naming_the_key(key, value, fragment):
    with pytest.raises(ConfigError) as info:
        RunConfig().with_overrides({key: value})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_overrides_convert_strings_to_the_key_type():
    cfg = RunConfig().with_overrides({"lr": "0.05", "epochs": "3", "model": "resnet18"})
    assert (cfg.lr, cfg.epochs, cfg.model) == (0.05, 3, "resnet18")
    assert isinstance(cfg.lr, float) and isinstance(cfg.epochs, int)


def test_freeze_without_pretrained_weights_is_refused():
    with pytest.raises(ConfigError, match="needs pretrained weights"):
        RunConfig(freeze="conv")


def test_config_round_trips_through_a_dict():
    cfg = RunConfig(lr=0.02, augment="h-rp", classes=5)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_set_options_parse_and_reject_missing_equals():
    assert parse_set_options(["lr=0.1", "epochs=2", "lr=0.2"]) == {"lr": "0.2", "epochs": "2"}
    with pytest.raises(ConfigError, match="is not key=value"):
        parse_set_options(["lr"])


def test_every_required_preset_ships_and_loads():
    presets = {p.name: p for p in list_presets()}
    assert REQUIRED_PRESETS <= set(presets)
    for p in presets.values():
        assert p.description, p.name
        assert p.path.read_text().lstrip().startswith("#"), f"{p.name} has no comment saying why"


def test_presets_match_the_report_rows():
    scratch = load_preset("scratch").config
    assert (scratch.model, scratch.weights, scratch.lr, scratch.epochs) == (
        "alexnet",
        "none",
        0.05,
        30,
    )
    assert (scratch.step_size, scratch.gamma, scratch.batch_size) == (20, 0.1, 256)
    fine = load_preset("finetune").config
    assert (fine.weights, fine.freeze, fine.lr, fine.epochs, fine.step_size) == (
        "imagenet",
        "none",
        0.005,
        20,
        10,
    )
    assert load_preset("freeze-conv").config.freeze == "conv"
    assert load_preset("freeze-fc").config.freeze == "fc"
    assert load_preset("aug-b-gs-r").config.augment == "b-gs-r"
    r50 = load_preset("resnet50-freeze").config
    assert (r50.model, r50.freeze, r50.lr) == ("resnet50", "conv", 0.005)


def test_build_config_applies_overrides_on_the_preset():
    preset, cfg = build_config("scratch", {"lr": "0.01"})
    assert preset.name == "scratch" and cfg.lr == 0.01 and cfg.epochs == 30


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown preset 'nope': choose one of .*scratch"):
        load_preset("nope")


def test_bad_toml_names_the_file(tmp_path: Path):
    bad = tmp_path / "broken.toml"
    bad.write_text("lr = = 3\n")
    with pytest.raises(ConfigError, match=f"{bad}: bad TOML"):
        load_preset_file(bad)


def test_unknown_key_in_preset_names_the_file_and_key(tmp_path: Path):
    bad = tmp_path / "typo.toml"
    bad.write_text("learning_rate = 0.1\n")
    with pytest.raises(ConfigError, match=f"{bad}: unknown key 'learning_rate'"):
        load_preset_file(bad)


def test_bad_value_in_preset_names_the_file(tmp_path: Path):
    bad = tmp_path / "neg.toml"
    bad.write_text("epochs = -1\n")
    with pytest.raises(ConfigError, match=f"{bad}: epochs=-1 must be >= 1"):
        load_preset_file(bad)
