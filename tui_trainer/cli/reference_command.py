"""The `reference-run` command: the report's protocol with the plain notebook-style loop
(bench/reference.py), headless, to measure a row's spread over seeds next to the engine's.

It writes nothing into the runs folder: per-epoch lines, then one JSON line with the result (and
the same JSON to `--out FILE` when given).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tui_trainer import config as C
from tui_trainer.cli.common import DataOpt, DeviceOpt, out, user_errors
from tui_trainer.data.layout import resolve_data_dir
from tui_trainer.errors import UserError
from tui_trainer.files import write_json_atomic


@user_errors
def reference_run(
    preset: Annotated[str, typer.Argument(help="Preset (see `tui-trainer presets`).")] = "scratch",
    seed: Annotated[int | None, typer.Option(help="Seed (default: the preset's).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set precision=bf16."),
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = 4,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the result as JSON to FILE.")
    ] = None,
    data: DataOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Train PRESET with the plain notebook-style loop (PIL, DataLoader, NCHW); print the result."""
    from tui_trainer.bench.reference import check_plain_config, plain_run

    overrides: dict[str, str | int] = dict(C.parse_set_options(set_ or []))
    for key, value in (("seed", seed), ("device", device)):
        if value is not None:
            overrides[key] = value
    _, cfg = C.build_config(preset, overrides)
    check_plain_config(cfg)
    if out_file is not None and not out_file.parent.is_dir():
        raise UserError(f"--out {out_file}: folder {out_file.parent} does not exist: create it")
    say = lambda line: out.print(line, markup=False, highlight=False)  # noqa: E731
    result = plain_run(cfg, resolve_data_dir(data), workers, say)
    payload = {"preset": preset, "config": cfg.to_dict(), "result": result.to_dict()}
    if out_file is not None:
        write_json_atomic(out_file, payload)
    # one line, whatever the terminal's width: a script reads the last line
    print(json.dumps({"preset": preset, **result.to_dict()}, separators=(",", ":")))
