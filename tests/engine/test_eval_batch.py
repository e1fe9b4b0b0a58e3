"""eval_batch_size: evaluation (and the frozen-feature pass) runs at its own batch, with the same
figures as at the training batch; 0 means the training batch; it is not part of what a run
measured, so runs that differ only by it match."""

import pytest
import torch

from tests.support.runs import tiny_config
from tui_trainer.config import eval_batch
from tui_trainer.errors import ConfigError
from tui_trainer.runs.groups import comparable
from tui_trainer.train import engine


def _batches_seen(model: torch.nn.Module) -> list[int]:
    seen: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    return seen


def test_evaluation_runs_at_the_eval_batch_with_the_same_figures(tiny_data):
    cfg = tiny_config(classes=3)
    prep = engine.prepare(cfg, tiny_data)
    model, split = prep.model, prep.tensors["val"]
    seen = _batches_seen(model)
    figures = {}
    for size in (0, 5, 64):
        run_cfg = cfg.with_overrides({"eval_batch_size": size})
        seen.clear()
        figures[size] = engine.evaluate(model, split, run_cfg, engine.make_context(prep))
        want = eval_batch(run_cfg)
        assert seen[:-1] == [want] * (len(seen) - 1) and 0 < seen[-1] <= want
        assert sum(seen) == len(split)
    assert eval_batch(cfg) == cfg.batch_size == 8
    for size in (5, 64):
        assert figures[size] == pytest.approx(figures[0], rel=1e-5, abs=1e-6)


def test_eval_batch_size_is_checked_and_not_compared():
    with pytest.raises(ConfigError, match="eval_batch_size=-1 must be >= 0"):
        tiny_config(eval_batch_size=-1)
    a, b = tiny_config().to_dict(), tiny_config(eval_batch_size=256).to_dict()
    assert comparable(a) == comparable(b)
    assert comparable(a) != comparable(tiny_config(batch_size=16).to_dict())
