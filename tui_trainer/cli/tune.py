"""`tui-trainer tune NAME`: a hyperparameter search (a sweep file with a [search] table,
studies/search_spec.py) run headless by this process as one worker of the study, or by N
children (`--parallel N`), or by a Slurm array of workers (`--slurm`). Every worker on the same
runs folder (or `--storage URL`) shares the study: a rerun continues it. `--results` prints the
best trial, the top trials, importances and the budget spent; `--confirm --seeds N` trains the
best config over N seeds and reports it as mean ± std.
Exit codes: 0 the study has its trials, 1 a trial's run failed, 2 bad input (nothing written),
3 trials are still training in another worker, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tui_trainer import config as C
from tui_trainer.cli import slurm_command
from tui_trainer.cli.common import DataOpt, DeviceOpt, RunsOpt, user_errors
from tui_trainer.data.layout import find_layout, resolve_data_dir
from tui_trainer.errors import UserError
from tui_trainer.runs.store import default_runs_dir, ensure_writable
from tui_trainer.studies import search_spec

TrialsOpt = Annotated[
    int | None,
    typer.Option("--trials", help="Finished trials the study stops at (else the file's)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key in every trial, e.g. --set classes=5."),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="An Optuna RDB URL (sqlite:///x.db, postgresql://...) instead of the runs "
        "folder's journal file (<runs>/.studies/NAME.journal).",
    ),
]

SlurmOpt = Annotated[
    bool,
    typer.Option(
        "--slurm",
        help="Write an sbatch script: a job array whose tasks are workers of the study "
        "(--parallel N tasks, else --max-running, else one per trial). Submits nothing.",
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="--slurm's script, or --results', to this file (else stdout)."),
]


@user_errors
def tune(
    name: Annotated[str, typer.Argument(help="Search name: a sweep file with a search table.")],
    trials: TrialsOpt = None,
    set_: SetOpt = None,
    data: DataOpt = None,
    runs_dir: RunsOpt = None,
    device: DeviceOpt = None,
    storage: StorageOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the space and the budget; run nothing.")
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option("--parallel", help="N worker processes (cores split between them)."),
    ] = None,
    results: Annotated[
        str | None,
        typer.Option("--results", help="Print the results (md | csv | json); train nothing."),
    ] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Train the best trial's config over --seeds seeds.")
    ] = False,
    seeds: Annotated[int, typer.Option("--seeds", help="--confirm: how many seeds.")] = 3,
    slurm: SlurmOpt = False,
    partition: slurm_command.PartitionOpt = None,
    time_limit: slurm_command.TimeOpt = None,
    gpus_per_task: slurm_command.GpusOpt = None,
    cpus_per_task: slurm_command.CpusOpt = None,
    mem: slurm_command.MemOpt = None,
    max_running: slurm_command.MaxRunningOpt = None,
    out_file: OutOpt = None,
) -> None:
    """Run a hyperparameter search: sampled trials, bad ones pruned after an epoch.

    Each trial is an ordinary run folder (config.json names the search and the trial). A rerun,
    or another `tune NAME` on the same runs folder, continues the same study; a trial whose
    worker was killed is resumed from its last epoch."""
    from tui_trainer.cli import search_run

    if out_file is not None and not slurm and results is None:
        raise UserError("--out writes --slurm's script or --results': add one, or drop --out")
    script = out_file if slurm else None  # --results' file is not the script's
    slurm_opts = slurm_command.SlurmOptions(
        slurm, partition, time_limit, gpus_per_task, cpus_per_task, mem, max_running, script
    )
    slurm_opts.check(dry_run=dry_run, member=None)
    spec, base = search_spec.load_search(name, trials=trials)
    overrides: dict[str, str] = C.parse_set_options(set_ or [])
    if device:
        overrides["device"] = device
    _check_overrides(base, spec, overrides)
    runs_dir = runs_dir or default_runs_dir()
    data_dir = resolve_data_dir(data)
    if dry_run:
        search_run.print_plan(spec, base, overrides, runs_dir, storage)
        return
    if results is not None:
        raise typer.Exit(search_run.print_results(spec, runs_dir, storage, results, out_file))
    find_layout(data_dir)  # a wrong --data fails here, before anything is written
    ensure_writable(runs_dir)
    options = _repeated(name, trials, set_, device, storage)
    if slurm:
        workers = parallel or max_running or spec.trials
        search_run.write_slurm(spec, slurm_opts, runs_dir, data_dir, options, workers)
        return
    if confirm:
        raise typer.Exit(
            search_run.confirm(spec, base, overrides, runs_dir, data_dir, storage, seeds)
        )
    if parallel is not None:
        raise typer.Exit(
            search_run.run_children(spec, parallel, runs_dir, data_dir, options, set_, storage)
        )
    raise typer.Exit(search_run.run_here(spec, base, overrides, runs_dir, data_dir, storage))


def _check_overrides(base, spec, overrides) -> None:
    """--set on top of the base (a bad key or value is --set's fault); a key the search
    samples cannot be fixed too."""
    from tui_trainer.errors import ConfigError

    try:
        base.with_overrides(overrides)
    except ConfigError as exc:
        raise ConfigError(f"--set: {exc}") from None
    sampled = [k for k in overrides if k in {p.key for p in spec.space}]
    if sampled:
        raise UserError(f"--set {sampled[0]}: the search samples {sampled[0]}; drop one of them")


def _repeated(name, trials, set_, device, storage) -> list[str]:
    """The options every worker (child, Slurm task) repeats."""
    words = ["--trials", str(trials)] if trials is not None else []
    words += slurm_command.repeated_options(set_, None, device)
    if storage:
        words += ["--storage", storage]
    return words
