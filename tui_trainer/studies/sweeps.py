"""Sweeps: a study of several runs as one action, resumable after a crash.

A sweep file sits beside the presets in `presets/` and is told apart from a preset by its `base`
key (`config.list_presets` skips such files). It names the preset its members start from and the
members, as a list, a grid, or both:

    description = "..."
    base = "scratch"              # the preset every member starts from
    include = ["other-sweep"]     # optional: that sweep's members come first
    seeds = [42, 0, 1]            # optional: every member below, once per seed
    [[runs]]                      # one member per table: overrides on the base preset
    name = "lr0.001"              #   optional label; run ids end with it
    preset = "freeze-conv"        #   optional: start from this preset instead of the base
    lr = 0.001
    [grid]                        # every combination of these values, crossed with each
    lr = [0.01, 0.05]             # [[runs]] entry (or with the base alone when there is none)

Members whose resolved configs are identical are run once (the first one is kept). Overrides
given for the whole sweep (`sweep NAME --set k=v`, the console's override field) end the name of
each member whose config they change: `scratch-lr0.05-e30-s20-g0.1-epochs=2`.

Seeds: `seeds` repeats each member of the file over those seeds, as repeats of one experiment
(the report and the Studies view show such a group as mean ± std). `tui-trainer sweep NAME
--seeds N` does the same with the first N seeds of 42, 0, 1, 2, ... (`first_seeds`) and wins over
every file's `seeds`, included ones too. A member's run at its own seed (the preset's, 42 unless
it sets one) keeps the member's name; the others end with `-seed<N>`: `lr0.05`, `lr0.05-seed0`,
`lr0.05-seed1`. Matching is by config, so a run made before with seed 42 counts as the first
seed. A member that sets `seed` itself ([[runs]], [grid] or --set) is refused with seeds: a
`[grid]` over seed makes separate members (separate cells), not repeats. studies/report.py says
how a cell picks among groups of repeats and what m is in "n=2 of 3" (every seed the group's
runs were started with, whatever their status).

Resuming: a member is done when the runs folder holds a completed run with the same resolved
config (`device` and `threads` aside: where a run ran does not change what it measured), whatever
started it. Before a member trains it is claimed in the runs folder (runs/claims.py), so sweep
processes on one runs folder, on this host or others, share the members out: one claimed by a
live process reads `running` here (`MemberState.holder` names it) and is left to it. Interrupted,
crashed and stale members whose run has a last.pt resume in their own folder, as `--resume`
would; those without one, and failed members, start again from scratch (studies/members.py
decides, under the claim). A diverged member is final: with the same seed it diverges the same
way again; delete its run folder to retry it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tui_trainer.config import RunConfig, load_preset, parse_value, presets_dir, read_toml
from tui_trainer.errors import ConfigError
from tui_trainer.events import EventCallback, RunEnded, RunStatus
from tui_trainer.runs.claims import ClaimHolder, claim_hash, read_holders
from tui_trainer.runs.groups import UNCOMPARED_KEYS, comparable
from tui_trainer.runs.status import PENDING, RERUN_STATUSES, exit_code_for
from tui_trainer.runs.store import Run, list_runs
from tui_trainer.studies import sweep_bounds as bounds
from tui_trainer.studies.sweep_file import Entry, find_sweep, read_entries, sweep_paths

SEED_KEY = "seed"
# `--seeds N` takes the first N: 42 first, the default seed, so runs made with the defaults
# count as the first seed of a group.
FIRST_SEED = 42


@dataclass(frozen=True)
class SweepMember:
    name: str
    preset: str
    overrides: dict[str, Any]  # on top of the preset: the sweep's entry, its grid values, --set
    config: RunConfig
    cell: str = ""  # the member's name without its seed suffix: one per group of seeds


@dataclass(frozen=True)
class Sweep:
    name: str
    description: str
    base: str
    members: list[SweepMember]
    dropped: list[str]  # members left out because an earlier one has the same config
    path: Path
    seeds: tuple[int, ...] = ()  # the seeds members repeat over (none: one run per member)


@dataclass(frozen=True)
class MemberState:
    member: SweepMember
    status: str  # PENDING or the run's RunStatus; `running` while a live process claims it
    run: Run | None  # the run the status comes from (None when pending)
    holder: ClaimHolder | None = None  # the member's claim, live or left by a dead process


class Standing(Protocol):
    """A member and its state: a MemberState, or a front end's row made from one."""

    @property
    def member(self) -> SweepMember: ...

    @property
    def status(self) -> str: ...


def list_sweeps(directory: Path | None = None) -> list[Sweep]:
    return [load_sweep(name, directory=directory) for name in sweep_paths(directory)]


def first_seeds(n: int) -> tuple[int, ...]:
    """The first `n` seeds of the fixed list 42, 0, 1, 2, ... (`--seeds N`)."""
    bounds.check_seed_count(n)
    return (FIRST_SEED, *(s for s in range(n) if s != FIRST_SEED))[:n]


def load_sweep(
    name: str,
    overrides: dict[str, Any] | None = None,
    directory: Path | None = None,
    seeds: tuple[int, ...] | None = None,
    source: str = "--set",
) -> Sweep:
    """Resolve a sweep's members (`overrides`, e.g. from --set, apply to all of them; `seeds`,
    from --seeds, replace every file's `seeds`). Every member is validated here, so bad input
    fails before anything runs; a bad override is blamed on `source`, where it was typed. A
    member's name ends with the overrides that change its config (`-epochs=2`)."""
    directory = directory or presets_dir()
    path = find_sweep(name, directory)
    data = read_toml(path)
    overrides = overrides or {}
    _check_overrides(overrides, source)
    members: dict[str, SweepMember] = {}  # by name
    dropped: list[str] = []
    kept: dict[str | None, str] = {}  # comparable config -> the member that runs it
    used: dict[int, None] = {}
    entries = read_entries(path, directory, (name,))
    bounds.check_seeded_size(sum(max(1, len(_seeds_for(e, seeds))) for e in entries), path)
    for entry in entries:
        entry, config = _applied(entry, overrides, directory, source)
        used.update(dict.fromkeys(_seeds_for(entry, seeds)))
        for member in _seed_members(entry, config, seeds):
            key = comparable(member.config.to_dict())
            if key in kept:
                dropped.append(f"{member.name} = {kept[key]}")
                continue
            if member.name in members:
                raise ConfigError(
                    f"{entry.path}: two members are named {member.name!r}: give them distinct names"
                )
            kept[key] = member.name
            members[member.name] = member
    description = str(data.get("description", ""))
    return Sweep(name, description, data["base"], [*members.values()], dropped, path, tuple(used))


def _check_overrides(overrides: dict[str, Any], source: str) -> None:
    """An override wrong on its own (an unknown key, a value of the wrong type) is the
    override's fault, whatever member it would meet first."""
    for key, value in overrides.items():
        try:
            parse_value(key, value)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def _applied(
    entry: Entry, overrides: dict[str, Any], directory: Path, source: str
) -> tuple[Entry, RunConfig]:
    """The entry with `overrides` on top, named after those that change its config (those of
    where it runs aside, as for matching runs), and its config."""
    try:
        own = load_preset(entry.preset, directory).config.with_overrides(entry.overrides)
    except ConfigError as exc:
        raise ConfigError(f"{entry.path}: member {entry.name}: {exc}") from None
    try:
        config = own.with_overrides(overrides)
    except ConfigError as exc:
        raise ConfigError(f"{source}, on member {entry.name}: {exc}") from None
    changed = [
        f"{k}={v}"
        for k, v in overrides.items()
        if k not in UNCOMPARED_KEYS and getattr(config, k) != getattr(own, k)
    ]
    name = "-".join([entry.name, *changed])
    merged = {**entry.overrides, **overrides}
    return dataclasses.replace(entry, name=name, overrides=merged), config


def _seeds_for(entry: Entry, forced: tuple[int, ...] | None) -> tuple[int, ...]:
    return entry.seeds if forced is None else forced


def _seed_members(
    entry: Entry, config: RunConfig, forced: tuple[int, ...] | None
) -> list[SweepMember]:
    """The entry as one member, or one per seed: the member's own seed keeps its name."""
    merged = entry.overrides
    seeds = _seeds_for(entry, forced)
    if not seeds:
        return [SweepMember(entry.name, entry.preset, merged, config, entry.name)]
    if SEED_KEY in merged:
        source = "--seeds" if forced is not None else "seeds"
        raise ConfigError(
            f"{entry.path}: member {entry.name} sets seed itself ([[runs]], [grid] or --set) "
            f"and {source} repeats it over seeds: drop one of the two"
        )
    members = []
    for seed in seeds:
        if seed == config.seed:
            members.append(SweepMember(entry.name, entry.preset, merged, config, entry.name))
            continue
        seeded = {**merged, SEED_KEY: seed}
        try:
            seeded_config = config.with_overrides({SEED_KEY: seed})
        except ConfigError as exc:
            raise ConfigError(f"{entry.path}: member {entry.name}: {exc}") from None
        name = f"{entry.name}-seed{seed}"
        members.append(SweepMember(name, entry.preset, seeded, seeded_config, entry.name))
    return members


def member_key(member: SweepMember) -> str:
    """The member's comparable config: what its runs and its claim are found by."""
    return comparable(member.config.to_dict()) or ""


def member_states(sweep: Sweep, runs_dir: Path) -> list[MemberState]:
    """Each member's standing in the runs folder: its latest completed run if there is one,
    else a run still going, else its latest run's outcome, else pending; a member claimed by a
    live process and not completed reads `running` (its run folder may not exist yet)."""
    by_key: dict[str, list[Run]] = {}
    for run in list_runs(runs_dir):
        key = comparable(run.config())
        if key is not None:
            by_key.setdefault(key, []).append(run)
    holders = read_holders(runs_dir)
    states = []
    for member in sweep.members:
        key = member_key(member)
        state = state_from_runs(member, by_key.get(key, []))
        states.append(_with_holder(state, holders.get(claim_hash(key))))
    return states


def member_state(member: SweepMember, runs_dir: Path) -> MemberState:
    """One member's standing from its runs alone (no claims): what its claimer looks at."""
    key = member_key(member)
    return state_from_runs(
        member, [r for r in list_runs(runs_dir) if comparable(r.config()) == key]
    )


def state_from_runs(member: SweepMember, runs: list[Run]) -> MemberState:
    statuses = [(run, run.status()) for run in runs]
    for wanted in (RunStatus.COMPLETED, RunStatus.RUNNING):
        found = [run for run, status in statuses if status == wanted]
        if found:
            return MemberState(member, wanted, found[-1])
    if statuses:
        return MemberState(member, statuses[-1][1], statuses[-1][0])
    return MemberState(member, PENDING, None)


def _with_holder(state: MemberState, holder: ClaimHolder | None) -> MemberState:
    if holder is None:
        return state
    live = holder.live and state.status != RunStatus.COMPLETED
    status = RunStatus.RUNNING if live else state.status
    return dataclasses.replace(state, status=status, holder=holder)


def pending_members(states: Iterable[Standing]) -> list[SweepMember]:
    """The members `sweep` still has to run, in order, from their `member_states`."""
    return [s.member for s in states if s.status in RERUN_STATUSES]


def member_meta(sweep: str, member: str) -> dict[str, str]:
    """The tags config.json carries for a sweep member's run (whoever started it)."""
    return {"sweep": sweep, "sweep_member": member}


def run_member(
    sweep: Sweep,
    member: SweepMember,
    *,
    data_dir: Path,
    runs_dir: Path,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
) -> tuple[Run | None, RunEnded]:
    """Train one member headless, tagging its run with the sweep (config.json's `sweep`).
    A stop before training returns no run (runs.launch.start_run)."""
    from tui_trainer.runs.launch import start_run

    return start_run(
        member.config,
        preset=member.preset,
        overrides=member.overrides,
        data_dir=data_dir,
        runs_dir=runs_dir,
        on_event=on_event,
        stop=stop,
        name=member.name,
        extra_meta=member_meta(sweep.name, member.name),
    )


def sweep_exit_code(states: list[MemberState], interrupted: bool) -> int:
    """130 stopped by the user; 1 a member failed, diverged or is left unfinished; else 3 (as
    `--member`'s) while some still train in another process; 0 once every member completed."""
    return exit_code_for({s.status for s in states}, interrupted)
