"""The run's SGD: fused where torch has the kernel, the same update as the plain loop."""

from __future__ import annotations

import torch

from tui_trainer.config import RunConfig
from tui_trainer.train.optimizer import make_sgd


def _params(seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in ((64, 32), (32,))]


def _steps(optimizer, params, grads, n: int = 3) -> None:
    for _ in range(n):
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        optimizer.step()


def test_on_a_cpu_the_sgd_is_fused_with_the_config_s_settings():
    cfg = RunConfig(lr=0.05, momentum=0.8, weight_decay=1e-3)
    opt = make_sgd(_params(0), cfg)
    assert opt.defaults["fused"] is True
    assert (opt.defaults["lr"], opt.defaults["momentum"], opt.defaults["weight_decay"]) == (
        0.05,
        0.8,
        1e-3,
    )
    assert make_sgd(_params(0), cfg, lr=0.0).defaults["lr"] == 0.0


def test_the_fused_update_is_the_plain_loop_s_to_rounding():
    cfg = RunConfig(lr=0.05, momentum=0.9, weight_decay=5e-4)
    fused, plain = _params(1), _params(1)
    grads = [torch.randn_like(p) for p in fused]
    _steps(make_sgd(fused, cfg), fused, grads)
    _steps(torch.optim.SGD(plain, lr=0.05, momentum=0.9, weight_decay=5e-4), plain, grads)
    for a, b in zip(fused, plain, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)
    assert not torch.equal(fused[0], _params(1)[0])  # it did update


def test_parameters_that_are_not_floating_point_get_the_plain_sgd():
    ints = [torch.nn.Parameter(torch.zeros(3, dtype=torch.int64), requires_grad=False)]
    assert not make_sgd(ints, RunConfig()).defaults.get("fused")
