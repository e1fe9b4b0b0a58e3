"""Test doubles for the console: a fixture runs folder and a scripted engine; and helpers that
drive the app and read what it shows.

Both write real run folders through the run store (`runs.RunWriter`), so the results table,
run detail and compare screens read exactly what a real run leaves behind.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from tui_trainer.config import RunConfig
from tui_trainer.events import Epoch, RunEnded, RunStarted, Step, fan_out
from tui_trainer.files import write_json_atomic
from tui_trainer.runs.results import compute_results, results_path
from tui_trainer.runs.store import Run, create_run
from tui_trainer.runs.writer import RunWriter

STEPS_PER_EPOCH = 6

# (run id, preset, overrides, epochs trained, final status, test accuracy)
FIXTURE_RUNS = (
    ("20240101-100000-scratch", "scratch", {"lr": 0.05, "epochs": 4}, 4, "completed", 0.412),
    ("20240101-110000-scratch", "scratch", {"lr": 0.01, "epochs": 4}, 4, "completed", 0.355),
    (
        "20240101-120000-finetune",
        "finetune",
        {"lr": 0.005, "weights": "imagenet", "epochs": 4},
        2,
        "interrupted",
        None,
    ),
    (
        "20240102-090000-freeze-conv",
        "freeze-conv",
        {"lr": 0.005, "weights": "imagenet", "freeze": "conv", "epochs": 3},
        3,
        "completed",
        0.838,
    ),
)

FIXTURE_IDS = [spec[0] for spec in FIXTURE_RUNS]


def curve_rows(epochs: int, skill: float, lr: float) -> tuple[list[Step], list[Epoch]]:
    """Smooth, deterministic curves: loss falls and accuracy rises towards `skill`."""
    steps, rows = [], []
    global_step = 0
    for epoch in range(1, epochs + 1):
        for step in range(1, STEPS_PER_EPOCH + 1):
            global_step += 1
            loss = 4.6 / (1 + 0.15 * global_step * skill) + 0.05 * (step % 3)
            steps.append(
                Step(
                    run_id="",
                    epoch=epoch,
                    step=step,
                    steps_per_epoch=STEPS_PER_EPOCH,
                    global_step=global_step,
                    loss=loss,
                    lr=lr,
                )
            )
        frac = epoch / (epochs + 1)
        train_acc, val_acc = skill * (0.6 + 0.5 * frac), skill * (0.55 + 0.4 * frac)
        rows.append(
            Epoch(
                run_id="",
                epoch=epoch,
                epochs=epochs,
                train_loss=3.5 - 2.5 * frac * skill,
                train_acc=train_acc,
                val_loss=3.6 - 2 * frac * skill,
                val_acc=val_acc,
                lr=lr,
                seconds=10.0,
                is_best=epoch == epochs,
            )
        )
    return steps, rows


def write_fixture_run(
    runs_dir: Path,
    run_id: str,
    preset: str,
    overrides: dict[str, Any],
    epochs_done: int,
    status: str,
    test_acc: float | None,
) -> Run:
    config = RunConfig().with_overrides(overrides)
    run = Run(runs_dir / run_id)
    run.path.mkdir(parents=True)
    meta = {
        "config": config.to_dict(),
        "preset": preset,
        "overrides": {k: str(v) for k, v in overrides.items()},
    }
    write_json_atomic(run.config_path, meta)
    writer = RunWriter(run)
    writer.summary = {"status": "running", "pid": 0, "host": "fixture"}
    skill = test_acc or 0.5
    steps, rows = curve_rows(epochs_done, skill, config.lr)
    writer(
        RunStarted(
            run_id=run_id,
            config=config.to_dict(),
            device="cpu",
            precision="fp32",
            num_classes=101,
            num_train=100,
            num_val=100,
            num_test=100,
            steps_per_epoch=STEPS_PER_EPOCH,
            epochs=config.epochs,
        )
    )
    for row in rows:
        for step in steps[(row.epoch - 1) * STEPS_PER_EPOCH : row.epoch * STEPS_PER_EPOCH]:
            writer(step)
        writer(row)
    best = max(rows, key=lambda r: r.val_acc)
    summary = {
        "best_epoch": best.epoch,
        "max_val_acc": best.val_acc,
        "final_train_loss": rows[-1].train_loss,
        "accuracy_gap": best.train_acc - best.val_acc,
        "loss_gap": best.val_loss - best.train_loss,
        "epochs_done": epochs_done,
        "seconds": 60.0 * epochs_done,
        "test_acc": test_acc,
        "test_loss": None if test_acc is None else 2.0 - test_acc,
    }
    writer(
        RunEnded(
            run_id=run_id,
            status=status,
            summary=summary,
            message="" if status == "completed" else "stopped",
        )
    )
    return run


def make_fixture_runs(runs_dir: Path) -> list[Run]:
    return [write_fixture_run(runs_dir, *spec) for spec in FIXTURE_RUNS]


# Studies: runs that fill a few cells of the report's tables.
FULL_SCRATCH = {"lr": 0.05, "epochs": 30, "step_size": 20, "gamma": 0.1, "last_batch": "drop"}
QUICK = {"classes": 5, "image_size": 64, "resize": 72}
FINETUNE = {"weights": "imagenet", "lr": 0.005, "epochs": 20, "step_size": 10, "gamma": 0.1}


def study_runs(runs_dir: Path) -> dict[str, Run]:
    """A full-protocol scratch row, a quick scratch row, and both cells of a backbone row."""
    return {
        "scratch": write_fixture_run(
            runs_dir, "20240301-100000-scratch", "scratch", FULL_SCRATCH, 2, "completed", 0.491
        ),
        "quick": write_fixture_run(
            runs_dir,
            "20240301-110000-scratch",
            "scratch",
            {**QUICK, "lr": 0.01, "epochs": 30, "step_size": 15, "gamma": 0.1},
            2,
            "completed",
            0.333,
        ),
        "r18": write_fixture_run(
            runs_dir,
            "20240301-120000-resnet18",
            "resnet18",
            {**FINETUNE, "model": "resnet18"},
            2,
            "completed",
            0.871,
        ),
        "r18-freeze": write_fixture_run(
            runs_dir,
            "20240301-130000-resnet18-freeze",
            "resnet18-freeze",
            {**FINETUNE, "model": "resnet18", "freeze": "conv"},
            2,
            "completed",
            0.912,
        ),
    }


# Per-class test results: 12 classes, 5 test images each; (true, predicted, images) mistakes.
FIXTURE_CLASSES = (
    "Faces ant airplanes cougar_body cougar_face crocodile crocodile_head "
    "dalmatian electric_guitar flamingo Leopards water_lilly"
).split()
FIXTURE_MISTAKES = (
    ("crocodile", "crocodile_head", 3),
    ("crocodile_head", "crocodile", 2),
    ("cougar_body", "cougar_face", 2),
    ("cougar_face", "cougar_body", 1),
    ("ant", "crocodile", 1),
    ("ant", "flamingo", 1),
    ("Leopards", "dalmatian", 2),
    ("water_lilly", "flamingo", 1),
    ("electric_guitar", "airplanes", 1),
    ("flamingo", "water_lilly", 1),
    ("dalmatian", "Leopards", 1),
    ("airplanes", "Faces", 1),
)


def write_fixture_results(run: Run, images_dir: Path) -> dict[str, Any]:
    """The run's test_results.json, as `perclass.compute_results` makes it at test time."""
    index = {name: i for i, name in enumerate(FIXTURE_CLASSES)}
    labels, preds, paths = [], [], []
    for true in FIXTURE_CLASSES:
        wrong = [pred for t, pred, n in FIXTURE_MISTAKES if t == true for _ in range(n)]
        for i in range(5):
            labels.append(index[true])
            preds.append(index[wrong[i]] if i < len(wrong) else index[true])
            paths.append(f"{true}/image_{i + 1:04d}.jpg")
    results = compute_results(list(FIXTURE_CLASSES), labels, preds, paths, images_dir)
    write_json_atomic(results_path(run.path), results)
    return results


class ScriptedEngine:
    """Stands in for `launch.start_run`: a real run folder, events at a scripted pace.

    Trains `epochs` epochs of `steps` steps and honours `stop` at every step like the engine
    does. With `hold_after=N` it sends N steps, then waits (idle) until it is stopped: tests
    can press keys while a run is "training" without a busy thread slowing every press.
    Records each call's preset and overrides.
    """

    def __init__(
        self, epochs: int = 2, steps: int = 4, hold_after: int | None = None, run_id: str = ""
    ) -> None:
        self.epochs, self.steps, self.hold_after = epochs, steps, hold_after
        self.run_id = run_id  # a fixed folder name (snapshots); else create_run's stamped one
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.started = threading.Event()

    def __call__(
        self,
        config,
        *,
        preset,
        overrides,
        data_dir,
        runs_dir,
        on_event,
        stop,
        name=None,
        extra_meta=None,
    ):
        self.calls.append((preset, dict(overrides)))
        meta = {"config": config.to_dict(), "preset": preset, "overrides": overrides}
        meta.update(extra_meta or {})
        if self.run_id:
            run = Run(runs_dir / self.run_id)
            run.path.mkdir(parents=True)
            write_json_atomic(run.config_path, meta)
        else:
            run = create_run(runs_dir, meta, preset, name)
        emit = fan_out(RunWriter(run), on_event)
        emit(
            RunStarted(
                run_id=run.id,
                config=config.to_dict(),
                device="cpu",
                precision="fp32",
                num_classes=3,
                num_train=24,
                num_val=12,
                num_test=12,
                steps_per_epoch=self.steps,
                epochs=self.epochs,
            )
        )
        self.started.set()
        status, global_step, rows = "completed", 0, []
        hold_after = self.hold_after
        for epoch in range(1, self.epochs + 1):
            for step in range(1, self.steps + 1):
                if hold_after is not None and global_step >= hold_after:
                    stop.wait()
                if stop.is_set():
                    status = "interrupted"
                    break
                global_step += 1
                emit(
                    Step(
                        run_id=run.id,
                        epoch=epoch,
                        step=step,
                        steps_per_epoch=self.steps,
                        global_step=global_step,
                        loss=2.0 / global_step,
                        lr=config.lr,
                    )
                )
            if status == "interrupted":
                break
            rows.append(
                Epoch(
                    run_id=run.id,
                    epoch=epoch,
                    epochs=self.epochs,
                    train_loss=1.0 / epoch,
                    train_acc=0.3 * epoch,
                    val_loss=1.2 / epoch,
                    val_acc=0.25 * epoch,
                    lr=config.lr,
                    seconds=0.1,
                    is_best=True,
                )
            )
            emit(rows[-1])
        summary = {
            "epochs_done": len(rows),
            "seconds": 1.0,
            "max_val_acc": rows[-1].val_acc if rows else None,
            "test_acc": 0.5 if status == "completed" else None,
        }
        ended = RunEnded(
            run_id=run.id,
            status=status,
            summary=summary,
            message="" if status == "completed" else "stopped",
        )
        emit(ended)
        return run, ended


def drive(app, scenario, size: tuple[int, int] = (100, 30)) -> None:
    """Run `scenario(pilot)` against the app in a headless terminal of `size`."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    asyncio.run(main())


async def wait_for(pilot, condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def cell_texts(table: DataTable) -> list[tuple[str, ...]]:
    """Every row of a table, as the text of its cells."""
    return [tuple(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]


def notices(app) -> list[str]:
    """The messages of the app's notifications, oldest first."""
    return [n.message for n in app._notifications]


async def wait_for_scan(pilot, what: str = "the runs watcher's scan") -> None:
    """Let the app handle a scan of the runs watcher that began after this call: what the
    folder holds now is in `app.runs_snapshot` and the views have been told."""
    app = pilot.app
    target = app.watcher.rescan()
    await wait_for(pilot, lambda: app.runs_scan >= target, what=what)
    await pilot.pause()
