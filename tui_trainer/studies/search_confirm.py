"""A search's winner confirmed over seeds: the best trial's config as a seeds sweep (the same
members, claims and reruns as `sweep NAME --seeds N`), reported as mean ± std, so a search's
result is never one lucky run."""

from __future__ import annotations

import statistics
from typing import Any

from tui_trainer.config import RunConfig
from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.studies.search_spec import SearchSpec
from tui_trainer.studies.sweep_file import Sweep, SweepMember, first_seeds
from tui_trainer.studies.sweeps import MemberState


def confirm_sweep(
    spec: SearchSpec, config: RunConfig, overrides: dict[str, Any], seeds: int
) -> Sweep:
    """`config` (the best trial's) once per seed of `--seeds N`: 42, 0, 1, ..."""
    name = f"{spec.name}-best"
    seeds_used = first_seeds(seeds)
    members = []
    for seed in seeds_used:
        seeded = {**overrides, "seed": seed}
        label = name if seed == config.seed else f"{name}-seed{seed}"
        members.append(
            SweepMember(label, spec.base, seeded, config.with_overrides({"seed": seed}), name)
        )
    return Sweep(
        f"{spec.name}-confirm", spec.description, spec.base, members, [], spec.path, seeds_used
    )


def best_params(view) -> dict[str, Any]:
    """The best trial's point, or UserError while none completed."""
    best = view.best if view is not None else None
    if best is None:
        raise UserError("no completed trial yet: run the search first (`tui-trainer tune NAME`)")
    return dict(best.params)


def spread_line(states: list[MemberState], key: str) -> str:
    """`key` over the completed seeds: "0.512 ± 0.013 (n=3 of 3)"."""
    values = [
        s.run.summary().get(key)
        for s in states
        if s.run is not None and s.status == RunStatus.COMPLETED
    ]
    values = [v for v in values if isinstance(v, int | float)]
    if not values:
        return f"- (n=0 of {len(states)})"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {std:.4f} (n={len(values)} of {len(states)})"
