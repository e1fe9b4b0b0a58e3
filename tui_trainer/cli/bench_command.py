"""The `bench` command: time the engine on this machine (bench.runner does the work)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from tui_trainer import config as C
from tui_trainer.cli.common import DataOpt, DeviceOpt, out, user_errors
from tui_trainer.errors import UserError


@user_errors
def bench(
    preset: Annotated[str, typer.Argument(help="Preset to time (see `tui-trainer presets`).")] = (
        "scratch"
    ),
    classes: Annotated[int | None, typer.Option(help="First N classes (default: all).")] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Crop size; resize follows at 256/224 of it.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Timed engine epochs.")] = 1,
    warmup: Annotated[
        int | None, typer.Option(help="Engine epochs before the timed ones (default 1 on GPU).")
    ] = None,
    ref_epochs: Annotated[int, typer.Option(help="Reference-loop epochs (0 skips it).")] = 1,
    workers: Annotated[int, typer.Option(help="Reference loop's DataLoader workers.")] = 4,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: preset's).")] = None,
    compute_steps: Annotated[
        int | None, typer.Option(help="Timed synthetic batches (default 3 on CPU, 20 on GPU).")
    ] = None,
    probe: Annotated[
        bool,
        typer.Option(help="Time fp32 against bf16 (the precision=auto probe) when it is forced."),
    ] = True,
    probe_cap: Annotated[
        float | None,
        typer.Option(help="The probe's cap on bf16's seconds per phase (train, eval); default 3."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set precision=bf16."),
    ] = None,
    data: DataOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Time the engine against pure compute (fp32 and bf16 side by side, at the run's batch), the
    precision=auto probe's prediction and a notebook-style loop on this machine."""
    from tui_trainer.bench.runner import BenchOptions, run_bench

    overrides: dict[str, str | int] = dict(C.parse_set_options(set_ or []))
    for key, value in (("classes", classes), ("batch_size", batch_size), ("device", device)):
        if value is not None:
            overrides[key] = value
    if image_size is not None:
        overrides["image_size"] = image_size
        overrides.setdefault("resize", round(image_size * 256 / 224))
    options = BenchOptions(
        preset=preset,
        overrides=overrides,
        data_dir=data,
        epochs=epochs,
        warmup=warmup,
        reference_epochs=ref_epochs,
        workers=workers,
        compute_steps=compute_steps,
        probe=probe,
    )
    if probe_cap is not None:
        if probe_cap <= 0:
            raise UserError(f"--probe-cap {probe_cap} is not a positive number of seconds: e.g. 5")
        options = dataclasses.replace(options, probe_cap_s=probe_cap)
    run_bench(options, lambda line: out.print(line, markup=False, highlight=False))
