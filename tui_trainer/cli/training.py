"""The `run` command: train one preset headless, or continue a stopped run with --resume."""

from __future__ import annotations

import functools
from typing import Annotated

import typer

from tui_trainer import config as C
from tui_trainer.cli.common import DataOpt, DeviceOpt, RunsOpt, err, user_errors
from tui_trainer.cli.listen import RUN_RESUME_HINT, exit_code, follow, stopping
from tui_trainer.data.layout import resolve_data_dir
from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.runs.store import default_runs_dir

PresetArg = Annotated[str | None, typer.Argument(help="Preset name (see `tui-trainer presets`).")]
RunSetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key, e.g. --set lr=0.01 (repeatable)."),
]
NameOpt = Annotated[str | None, typer.Option(help="Label for the run id (default: preset).")]
ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        metavar="RUN_ID",
        help="Continue an interrupted, crashed or failed run from its last finished epoch.",
    ),
]


@user_errors
def run(
    preset: PresetArg = None,
    set_: RunSetOpt = None,
    data: DataOpt = None,
    runs_dir: RunsOpt = None,
    device: DeviceOpt = None,
    name: NameOpt = None,
    resume: ResumeOpt = None,
) -> None:
    """Train one preset headless (or --resume a stopped run) and leave a run folder behind."""
    launch = _launcher(preset, set_, data, device, name, resume)
    runs_dir = runs_dir or default_runs_dir()
    with stopping() as stop:
        trained, ended = follow(
            lambda on_event: launch(runs_dir=runs_dir, on_event=on_event, stop=stop), runs_dir
        )
    if ended.status == RunStatus.INTERRUPTED and trained is not None:
        err.print(RUN_RESUME_HINT.replace("RUN_ID", trained.id), markup=False, highlight=False)
    raise typer.Exit(exit_code(ended.status))


def _launcher(preset, set_, data, device, name, resume) -> functools.partial:
    """`resume_run` or `start_run` with everything but the runs folder, listener and stop."""
    from tui_trainer.runs.launch import resume_run, start_run

    if resume is not None:
        if preset or set_ or name:
            raise UserError(
                "--resume continues a run with its own config: drop PRESET, --set and --name"
            )
        return functools.partial(resume_run, resume, data_dir=data, device=device)
    if preset is None:
        raise UserError(
            "missing PRESET: name one (see `tui-trainer presets`) or pass --resume RUN_ID"
        )
    overrides: dict[str, str] = C.parse_set_options(set_ or [])
    if device:
        overrides["device"] = device
    loaded, cfg = C.build_config(preset, overrides)
    return functools.partial(
        start_run,
        cfg,
        preset=loaded.name,
        overrides=overrides,
        data_dir=resolve_data_dir(data),
        name=name,
    )
