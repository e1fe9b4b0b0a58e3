"""The fast paths give the slow paths' results: frozen features, cached decoding."""

import pytest
import torch

from tests.support.runs import stand_in_imagenet, tiny_config
from tui_trainer.data.batches import batch_order, iterate_batches, normalization
from tui_trainer.runs.launch import start_run
from tui_trainer.train import engine
from tui_trainer.train import frozen_features as features


def _run(tiny_data, tmp_path, cfg):
    return start_run(
        cfg, preset="test", overrides={}, data_dir=tiny_data, runs_dir=tmp_path / "runs"
    )


@pytest.mark.parametrize("model", ["alexnet", "resnet18"])
def test_frozen_feature_path_gives_the_slow_paths_metrics(model, tiny_data, tmp_path, monkeypatch):
    stand_in_imagenet(model)
    cfg = tiny_config(model=model, weights="imagenet", freeze="conv", epochs=2, lr=0.005)
    fast_run, fast = _run(tiny_data, tmp_path / "fast", cfg)
    monkeypatch.setattr(features, "applies", lambda config: False)
    slow_run, slow = _run(tiny_data, tmp_path / "slow", cfg)
    assert fast.status == slow.status == "completed"
    assert "frozen_features" in fast_run.meta()["fast_paths"]
    assert "frozen_features" not in slow_run.meta()["fast_paths"]
    for a, b in zip(fast_run.epochs(), slow_run.epochs(), strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
    for key in ("test_acc", "test_loss", "max_val_acc", "final_train_loss"):
        assert fast.summary[key] == pytest.approx(slow.summary[key], rel=1e-4, abs=1e-5), key
    steps = zip(fast_run.steps(), slow_run.steps(), strict=True)
    assert all(a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5) for a, b in steps)


def test_frozen_features_only_without_augmentation():
    assert features.applies(tiny_config(weights="imagenet", freeze="conv"))
    assert not features.applies(tiny_config(weights="imagenet", freeze="conv", augment="cs-hf"))
    assert features.applies(tiny_config(weights="imagenet", freeze="conv", augment="h-rp", aug_p=0))
    assert not features.applies(tiny_config(weights="imagenet", freeze="fc"))
    assert not features.applies(tiny_config())


def test_the_run_records_its_fast_paths_and_precision(tiny_data, tmp_path):
    run, _ = _run(tiny_data, tmp_path, tiny_config(epochs=1, augment="b-gs-r"))
    meta = run.meta()
    assert meta["precision"] == "fp32"
    assert meta["fast_paths"] == ["decoded_image_cache", "channels_last", "batched_augment"]


def test_cached_batches_equal_the_plain_per_item_pipeline(tiny_data):
    """The engine's batches (decode once, uint8 cache, normalise per batch) are the tensors the
    notebook's per-item PIL pipeline gives for the same images in the same seeded order."""
    from tui_trainer.bench.reference import ImageListDataset, reference_transform

    cfg = tiny_config()
    prep = engine.prepare(cfg, tiny_data)
    split = prep.tensors["train"]
    mean, std = normalization(cfg)
    ctx = engine.make_context(prep)
    plain = ImageListDataset(
        [prep.splits.images_dir / p for p in split.paths],
        split.labels.tolist(),
        reference_transform(cfg.resize, cfg.image_size, mean, std),
    )
    order = batch_order(len(split), cfg.seed, epoch=1, shuffle=True)
    start = 0
    for images, labels in iterate_batches(split, cfg.batch_size, order):
        x = ctx.to_input(images)
        items = [plain[i] for i in order[start : start + len(labels)].tolist()]
        expected = torch.stack([image for image, _ in items])
        assert torch.equal(labels, torch.tensor([label for _, label in items]))
        torch.testing.assert_close(x, expected, atol=1e-5, rtol=0)
        start += len(labels)
    assert start == len(split)


def test_a_cpu_input_reuses_its_memory_and_is_bf16_under_bf16_autocast(tiny_data):
    cfg = tiny_config()
    prep = engine.prepare(cfg, tiny_data)
    images = prep.tensors["train"].images[:4]
    fp32 = engine.make_context(prep)
    first = fp32.to_input(images)
    expected = first.clone()
    again = fp32.to_input(images[:3])  # a smaller last batch: the same memory
    assert again.data_ptr() == first.data_ptr() and torch.equal(again, expected[:3])
    assert first.is_contiguous(memory_format=torch.channels_last)
    # every uint8 value in every channel: the two-pass normalisation's floats, up to the rounding
    # of a fused multiply-add
    every = torch.arange(256, dtype=torch.uint8).repeat(3 * 16).view(1, 3, 64, 64)
    plain = every.contiguous(memory_format=torch.channels_last).float()
    two_pass = plain.mul_(fp32.scale).sub_(fp32.shift)
    torch.testing.assert_close(fp32.to_input(every), two_pass, atol=1e-6, rtol=0)
    prep.precision = "bf16"
    bf16 = engine.make_context(prep)
    x = bf16.to_input(images)
    assert x.dtype == torch.bfloat16 and torch.equal(x, expected.to(torch.bfloat16))


def test_rows_are_gathered_as_index_select_would():
    from tui_trainer.data.batches import gather_rows

    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)  # 192-byte rows: words
    idx = torch.tensor([7, 0, 7, 3])
    for source in (images, images[2:], images[:0]):  # a view at an offset; an empty split
        chosen = idx[idx < len(source)]
        assert torch.equal(gather_rows(source, chosen), source.index_select(0, chosen))
    odd = torch.randint(0, 256, (5, 3, 5, 5), dtype=torch.uint8)  # 75 bytes: byte by byte
    assert torch.equal(gather_rows(odd, idx[idx < 5]), odd.index_select(0, idx[idx < 5]))
    floats = torch.rand(5, 4)
    assert torch.equal(gather_rows(floats, torch.tensor([4, 1])), floats[[4, 1]])
