"""The report's three augmentation pipelines, applied per image with probability p.

    cs-hf   contrast and saturation jitter, then a horizontal flip
    h-rp    hue jitter, then a random perspective warp
    b-gs-r  brightness jitter, grayscale (kept 3-channel), random rotation

Training (`make_augmenter`) and previews (`augment_image`) apply them to a whole batch at once, on
whatever device the batch is on: each image gets its own Bernoulli(p) draw and, when chosen, its
own parameters, drawn from the distributions torchvision's transforms draw them from
(ColorJitter's factors and random op order, RandomPerspective's corner offsets, RandomRotation's
angle); the image operations are torchvision's tensor kernels written for per-image parameters
(tests compare them). Working on [0, 1] floats, results differ from torchvision's uint8
transforms only by their uint8 rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn.functional import affine_grid, grid_sample

# The report names the operations but not their strengths; these are torchvision's usual ranges.
CONTRAST = SATURATION = BRIGHTNESS = 0.5  # factor ~ U[1 - 0.5, 1 + 0.5]
HUE = 0.1  # hue shift ~ U[-0.1, 0.1] (of a full turn)
PERSPECTIVE = 0.3  # distortion_scale
ROTATION = 30.0  # degrees ~ U[-30, 30]

# --- batched kernels: x is float (K, 3, H, W) in [0, 1], parameters are (K,) tensors -----------


def _per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = _per_image(factor)
    return (x * f + other * (1.0 - f)).clamp_(0.0, 1.0)


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (x * _per_image(factor)).clamp_(0.0, 1.0)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x), factor)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    return _gray(x).expand_as(x).contiguous()


def hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """RGB -> HSV, h += shift (mod 1), -> RGB, as torchvision's adjust_hue (in fewer passes)."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    chroma = maxc - minc
    # hue in sixths of a turn; grey pixels (chroma 0) take the first branch and get 0
    sixths = torch.where(
        maxc == r, g - b, torch.where(maxc == g, torch.add(b - r, chroma, alpha=2.0), 0.0)
    )
    sixths = torch.where((maxc != r) & (maxc != g), torch.add(r - g, chroma, alpha=4.0), sixths)
    sixths = sixths.div_(chroma.clamp_min(1e-12)).unsqueeze(1)
    sixths = sixths + (6.0 * shift.view(-1, 1, 1, 1) + _HSV_OFFSETS.to(x.device))
    # HSV -> RGB in closed form: channel n of (R, G, B) = (5, 3, 1) is max - chroma * ramp(k),
    # k = (sixths + n) mod 6, ramp(k) = clamp(min(k, 4 - k), 0, 1)
    k = sixths.remainder_(6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return torch.addcmul(maxc.unsqueeze(1), chroma.unsqueeze(1), ramp, value=-1.0)


_HSV_OFFSETS = torch.tensor([5.0, 3.0, 1.0]).view(1, 3, 1, 1)


def _grid_sample(x: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "nearest":  # fill 0 outside: what zero padding gives already
        return grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    # torchvision's fill=0 with bilinear samples a mask channel and multiplies by it
    ones = torch.ones_like(x[:, :1])
    out = grid_sample(
        torch.cat((x, ones), 1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out[:, :-1] * out[:, -1:]


def perspective_coefficients(endpoints: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(K, 4, 2) corner end points -> (K, 8) coefficients mapping output to input pixels."""
    start = torch.tensor(
        [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=torch.float64
    )
    end = endpoints.to(torch.float64)
    k = end.shape[0]
    a = torch.zeros(k, 8, 8, dtype=torch.float64)
    ex, ey = end[..., 0], end[..., 1]
    a[:, 0::2, 0], a[:, 0::2, 1], a[:, 0::2, 2] = ex, ey, 1.0
    a[:, 1::2, 3], a[:, 1::2, 4], a[:, 1::2, 5] = ex, ey, 1.0
    a[:, 0::2, 6], a[:, 0::2, 7] = -start[:, 0] * ex, -start[:, 0] * ey
    a[:, 1::2, 6], a[:, 1::2, 7] = -start[:, 1] * ex, -start[:, 1] * ey
    b = start.reshape(1, 8).expand(k, 8)
    return torch.linalg.solve(a, b).to(torch.float32)


def perspective(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Bilinear perspective warp with per-image coefficients, fill 0 (torchvision's kernel)."""
    k, _, h, w = x.shape
    c = coeffs.to(x.device).view(k, 8, 1, 1).unbind(1)
    xs = torch.arange(w, device=x.device, dtype=torch.float32).add_(0.5).view(1, 1, w)
    ys = torch.arange(h, device=x.device, dtype=torch.float32).add_(0.5).view(1, h, 1)
    # pixel centres (x, y) -> (c0 x + c1 y + c2, c3 x + c4 y + c5) / (c6 x + c7 y + 1), then
    # to grid_sample's [-1, 1] coordinates
    den = (c[6] * xs + c[7] * ys + 1.0).mul_(0.5)
    gx = (c[0] * xs + c[1] * ys + c[2]).div_(den * w).sub_(1.0)
    gy = (c[3] * xs + c[4] * ys + c[5]).div_(den * h).sub_(1.0)
    return _grid_sample(x, torch.stack((gx, gy), -1), "bilinear")


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour rotation about the centre, same size, fill 0 (torchvision's kernel)."""
    k, _, h, w = x.shape
    rad = torch.deg2rad(-degrees.to(x.device, torch.float32))
    cos, sin = torch.cos(rad), torch.sin(rad)
    zero = torch.zeros_like(cos)
    # torchvision's inverse matrix [[cos, sin], [-sin, cos]] on pixel offsets from the centre,
    # written for affine_grid's normalised coordinates
    theta = torch.stack((cos, sin * h / w, zero, -sin * w / h, cos, zero), 1).view(k, 2, 3)
    grid = affine_grid(theta, [k, x.shape[1], h, w], align_corners=False)
    return _grid_sample(x, grid, "nearest")


# --- parameters, drawn on the CPU from the global generator (seeded per epoch) -----------------
# or from the `generator` given (a preview: it must not disturb a run training in another thread)

Generator = torch.Generator | None


def _uniform(k: int, low: float, high: float, generator: Generator = None) -> torch.Tensor:
    return torch.empty(k).uniform_(low, high, generator=generator)


def random_endpoints(
    k: int, height: int, width: int, scale: float, generator: Generator = None
) -> torch.Tensor:
    """RandomPerspective's corners: each moves inward by up to scale * half the side."""
    bh = int(scale * (height // 2)) + 1
    bw = int(scale * (width // 2)) + 1

    def near(low_end: bool, size: int, bound: int) -> torch.Tensor:
        low, high = (0, bound) if low_end else (size - bound, size)
        return torch.randint(low, high, (k,), generator=generator)

    corners = [(True, True), (False, True), (False, False), (True, False)]  # tl, tr, br, bl
    return torch.stack(
        [torch.stack((near(lx, width, bw), near(ly, height, bh)), -1) for lx, ly in corners], 1
    )


def contrast_saturation(
    x: torch.Tensor, c: torch.Tensor, s: torch.Tensor, contrast_first: torch.Tensor
) -> torch.Tensor:
    """ColorJitter(contrast, saturation) with its random op order chosen per image.

    Both ops blend towards a target (contrast: the mean grey level; saturation: the grey image),
    so one pass picks per image which target comes first: half the work of running both orders.
    """
    first = _per_image(contrast_first)
    gray = _gray(x)
    target = torch.where(first, gray.mean(dim=(1, 2, 3), keepdim=True), gray)
    y = _blend(x, target, torch.where(contrast_first, c, s))
    gray = _gray(y)
    target = torch.where(first, gray, gray.mean(dim=(1, 2, 3), keepdim=True))
    return _blend(y, target, torch.where(contrast_first, s, c))


def _cs_hf(x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
    k = x.shape[0]
    c = _uniform(k, 1 - CONTRAST, 1 + CONTRAST, generator).to(x.device)
    s = _uniform(k, 1 - SATURATION, 1 + SATURATION, generator).to(x.device)
    # ColorJitter's random order
    contrast_first = (torch.rand(k, generator=generator) < 0.5).to(x.device)
    return contrast_saturation(x, c, s, contrast_first).flip(-1)


def _h_rp(x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
    k, _, h, w = x.shape
    shift = _uniform(k, -HUE, HUE, generator)
    coeffs = perspective_coefficients(random_endpoints(k, h, w, PERSPECTIVE, generator), h, w)
    return perspective(hue(x, shift.to(x.device)), coeffs)


def _b_gs_r(x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
    k = x.shape[0]
    factor = _uniform(k, 1 - BRIGHTNESS, 1 + BRIGHTNESS, generator)
    angle = _uniform(k, -ROTATION, ROTATION, generator)
    return rotate(grayscale(brightness(x, factor.to(x.device))), angle)


BATCHED: dict[str, Callable[..., torch.Tensor]] = {  # (x, generator=None) -> augmented x
    "cs-hf": _cs_hf,
    "h-rp": _h_rp,
    "b-gs-r": _b_gs_r,
}


# On the CPU a few images at a time stay in cache; a GPU takes the whole batch in one go.
CPU_CHUNK = 4


def make_augmenter(kind: str, p: float) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function (B, 3, H, W) -> a new batch where each image is augmented with probability p.

    It runs on the batch's device. uint8 batches come back uint8; float batches are taken as
    [0, 1] and come back float.
    """
    if kind == "none" or p <= 0:
        return None
    apply = BATCHED[kind]

    def augment(batch: torch.Tensor) -> torch.Tensor:
        chosen = torch.nonzero(torch.rand(batch.shape[0]) < p).flatten()
        out = batch.clone()
        step = CPU_CHUNK if batch.device.type == "cpu" else max(len(chosen), 1)
        for start in range(0, len(chosen), step):
            idx = chosen[start : start + step].to(batch.device)
            picked = batch.index_select(0, idx)
            if batch.dtype == torch.uint8:
                done = apply(picked.float().div_(255.0)).mul_(255.0).round_().to(torch.uint8)
            else:
                done = apply(picked).to(batch.dtype)
            out.index_copy_(0, idx, done)
        return out

    return augment


def augment_image(image: torch.Tensor, kind: str, generator: Generator = None) -> torch.Tensor:
    """One uint8 CHW image through one batched pipeline, always, drawing from `generator`
    (default: the global one): what training does to an image it picks (for previews)."""
    x = image.unsqueeze(0).float().div_(255.0)
    return BATCHED[kind](x, generator).mul_(255.0).round_().to(torch.uint8)[0]
