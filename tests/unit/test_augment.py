import pytest
import torch

from tui_trainer.config import AUGMENTATIONS
from tui_trainer.data.augment import make_augmenter


def _batch(n: int, size: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("kind", sorted(k for k in AUGMENTATIONS if k != "none"))
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


# --- the batched kernels do what torchvision's per-image kernels do with the same parameters ---


def _float_batch(n: int = 4, h: int = 40, w: int = 50) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(5))


def _each(fn, x, *params):
    return torch.stack([fn(x[i], *(p[i].tolist() for p in params)) for i in range(len(x))])


def test_color_kernels_match_torchvision():
    from torchvision.transforms.v2 import functional as F

    from tui_trainer.data import augment as A

    x = _float_batch()
    x[0] = x[0, :1]  # a grey image: hue is undefined there and must stay put
    f = torch.tensor([0.5, 0.9, 1.2, 1.5])
    shift = torch.tensor([-0.1, -0.03, 0.05, 0.1])
    close = dict(atol=1e-5, rtol=0)
    torch.testing.assert_close(A.brightness(x, f), _each(F.adjust_brightness, x, f), **close)
    torch.testing.assert_close(A.contrast(x, f), _each(F.adjust_contrast, x, f), **close)
    torch.testing.assert_close(A.saturation(x, f), _each(F.adjust_saturation, x, f), **close)
    torch.testing.assert_close(A.hue(x, shift), _each(F.adjust_hue, x, shift), **close)
    torch.testing.assert_close(A.grayscale(x), F.rgb_to_grayscale(x, 3), **close)
    s = torch.tensor([1.4, 0.6, 0.7, 1.3])
    first = torch.tensor([True, False, True, False])
    expected = torch.stack(
        [
            F.adjust_saturation(F.adjust_contrast(x[i], f[i].item()), s[i].item())
            if first[i]
            else F.adjust_contrast(F.adjust_saturation(x[i], s[i].item()), f[i].item())
            for i in range(4)
        ]
    )
    torch.testing.assert_close(A.contrast_saturation(x, f, s, first), expected, **close)


def test_geometric_kernels_match_torchvision():
    from torchvision.transforms.v2 import functional as F

    from tui_trainer.data import augment as A

    x = _float_batch()
    torch.manual_seed(6)
    ends = A.random_endpoints(4, 40, 50, A.PERSPECTIVE)
    start = [[0, 0], [49, 0], [49, 39], [0, 39]]
    expected = torch.stack([F.perspective(x[i], start, ends[i].tolist(), fill=0) for i in range(4)])
    coeffs = A.perspective_coefficients(ends, 40, 50)
    torch.testing.assert_close(A.perspective(x, coeffs), expected, atol=1e-4, rtol=0)
    angles = torch.tensor([-29.0, -7.5, 12.25, 30.0])
    rotated = A.rotate(x, angles)
    expected = _each(F.rotate, x, angles)
    # nearest neighbour: a rounding tie may pick the next pixel; allow a handful of them
    assert (rotated - expected).abs().gt(1e-5).float().mean() < 0.002


def test_random_corners_stay_in_torchvision_bounds():
    from tui_trainer.data import augment as A

    torch.manual_seed(7)
    ends = A.random_endpoints(2000, 40, 50, 0.3)  # bounds: x < 8 or >= 42, y < 7 or >= 33
    left, top = ends[:, [0, 3], 0], ends[:, [0, 1], 1]
    right, bottom = ends[:, [1, 2], 0], ends[:, [2, 3], 1]
    assert left.min() == 0 and left.max() == 7 and right.min() == 42 and right.max() == 49
    assert top.min() == 0 and top.max() == 6 and bottom.min() == 33 and bottom.max() == 39


def test_float_batches_stay_float_and_in_range():
    from tui_trainer.data import augment as A

    torch.manual_seed(8)
    x = _float_batch(16)
    for kind in A.BATCHED:
        out = make_augmenter(kind, 1.0)(x)
        assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
        assert not torch.equal(out, x)
