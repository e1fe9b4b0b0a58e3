import pytest
import torch

from tui_trainer.augment import PIPELINES, make_augmenter


def _batch(n: int, size: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_augmentation_is_drawn_per_image(kind):
    torch.manual_seed(1)
    batch = _batch(16)
    out = make_augmenter(kind, 0.5)(batch)
    changed = [not torch.equal(a, b) for a, b in zip(batch, out, strict=True)]
    assert 0 < sum(changed) < 16, "with p=0.5 some images change and some do not"
    assert out.dtype == torch.uint8 and out.shape == batch.shape


def test_two_augmented_images_get_different_random_parameters():
    torch.manual_seed(2)
    same = _batch(1).expand(8, -1, -1, -1).contiguous()
    out = make_augmenter("h-rp", 1.0)(same)
    assert len({bytes(img.numpy()) for img in out}) > 1


def test_fraction_augmented_is_close_to_p():
    torch.manual_seed(3)
    batch = _batch(2000, size=8)
    out = make_augmenter("cs-hf", 0.3)(batch)
    changed = sum(not torch.equal(a, b) for a, b in zip(batch, out, strict=True))
    assert abs(changed / 2000 - 0.3) < 0.04


def test_none_or_zero_probability_means_no_augmenter():
    assert make_augmenter("none", 0.5) is None
    assert make_augmenter("cs-hf", 0.0) is None
