"""How long the commands that train nothing take to start, as whole processes, and whether they
imported torch. Not a test: it prints a table (min / median / max seconds over N runs) to read
beside the targets.

It writes one synthetic completed run folder through the run store and writer, copies it into
a temporary runs folder 500 times under distinct ids, and times `tui-trainer --help`,
`presets`, `runs`, `show ID`, `sweeps` and `sweep scratch-lr-sweep --dry-run` on it, and the
console up to its first screen (headless, through Textual's Pilot, as `tui-trainer` opens it).
Whether torch was imported comes from one more run of each under `python -X importtime`.

    PYTHONPATH=. python scripts/bench_startup.py            # 5 runs each
    PYTHONPATH=. python scripts/bench_startup.py --repeat 9 --runs 1000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from tui_trainer.config import load_preset
from tui_trainer.events import Epoch, RunEnded, RunStarted, RunStatus, Step
from tui_trainer.files import write_json_atomic
from tui_trainer.runs.results import compute_results, results_path
from tui_trainer.runs.store import Run, make_run_id
from tui_trainer.runs.writer import RunWriter

TARGETS = {"--help": 0.5, "runs": 1.0, "console first screen": 2.0}
EPOCHS, STEPS, CLASSES = 3, 20, 5

# The console as `tui-trainer` with no command opens it (the CLI's modules first), headless;
# prints a line once the first screen is up, then quits.
CONSOLE = """
import asyncio, sys
import tui_trainer.cli.app
from tui_trainer.tui.app import make_app

async def main():
    app = make_app(data_dir=sys.argv[1], runs_dir=sys.argv[2])
    async with app.run_test(size=(100, 30)):
        print("first screen", flush=True)

asyncio.run(main())
"""


def write_template(folder: Path) -> Run:
    """A completed scratch run of EPOCHS epochs, as the engine's events leave it on disk."""
    preset = load_preset("scratch")
    overrides = {"classes": CLASSES, "image_size": 64, "resize": 72, "epochs": EPOCHS}
    config = preset.config.with_overrides(overrides)
    run = Run(folder)
    folder.mkdir(parents=True)
    meta = {"config": config.to_dict(), "preset": preset.name, "overrides": overrides}
    write_json_atomic(run.config_path, meta)
    writer = RunWriter(run)
    writer(RunStarted(run.id, config.to_dict(), "cpu", "fp32", CLASSES, 200, 50, 50, STEPS, EPOCHS))
    for epoch in range(1, EPOCHS + 1):
        for step in range(1, STEPS + 1):
            loss = 1.6 / (1 + 0.05 * ((epoch - 1) * STEPS + step))
            writer(Step(run.id, epoch, step, STEPS, (epoch - 1) * STEPS + step, loss, config.lr))
        acc, loss = 0.3 + 0.1 * epoch, 1.5 - 0.2 * epoch
        writer(Epoch(run.id, epoch, EPOCHS, loss, acc + 0.05, loss + 0.1, acc, config.lr, 9.0))
    classes = [f"class{i}" for i in range(CLASSES)]
    labels = [i % CLASSES for i in range(50)]
    preds = [(label + (i % 3 == 0)) % CLASSES for i, label in enumerate(labels)]
    paths = [f"{classes[label]}/image_{i:04d}.jpg" for i, label in enumerate(labels)]
    write_json_atomic(results_path(folder), compute_results(classes, labels, preds, paths, folder))
    summary = {"best_epoch": EPOCHS, "max_val_acc": acc, "test_acc": 0.66, "seconds": 27.0}
    writer(RunEnded(run.id, RunStatus.COMPLETED, summary))
    return run


def build_runs_folder(runs_dir: Path, count: int) -> list[str]:
    """`count` copies of the template under ids a minute apart; returns the ids."""
    template = write_template(runs_dir.parent / "template")
    start = datetime(2026, 1, 1, 9, 0, 0)
    ids = [make_run_id("scratch", when=start + timedelta(minutes=i)) for i in range(count)]
    for run_id in ids:
        shutil.copytree(template.path, runs_dir / run_id)
    return ids


def cli() -> list[str]:
    """The console script next to this interpreter, as a person runs it; else -m."""
    script = Path(sys.executable).with_name("tui-trainer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tui_trainer"]


def timed(argv: list[str], env: dict[str, str], until: str | None = None) -> tuple[float, float]:
    """(wall, cpu) seconds: wall from the start of the process to its exit (or to a line of
    stdout that starts with `until`); cpu, its user + system time to its exit, which other
    processes on the machine change less than they change the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        if until is not None:
            for line in proc.stdout:
                if line.startswith(until):
                    seconds = time.perf_counter() - start
                    break
            else:
                raise RuntimeError(f"{argv[-1]}: never printed {until!r}")
            proc.stdout.read()
        else:
            proc.stdout.read()
            seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


def imported(python_argv: list[str], env: dict[str, str], module: str) -> bool:
    """Whether `module` was imported by the command (run once more under -X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *python_argv],
        env=env,
        capture_output=True,
        text=True,
    )
    return any(line.rsplit("|", 1)[-1].strip() == module for line in done.stderr.splitlines())


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown CPU"
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in out.splitlines())
    )
    name, cpus = fields.get("Model name", "unknown CPU"), fields.get("CPU(s)", "?")
    return f"{name} (family {fields.get('CPU family')}, model {fields.get('Model')}), {cpus} CPU(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command")
    parser.add_argument("--runs", type=int, default=500, help="run folders to list")
    parser.add_argument("--data", default=os.environ.get("TUI_TRAINER_DATA", "data/caltech101"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        runs_dir = Path(tmp) / "runs"
        ids = build_runs_folder(runs_dir, args.runs)
        env = {**os.environ, "COLUMNS": "100", "TUI_TRAINER_RUNS": str(runs_dir)}
        env["TUI_TRAINER_DATA"] = args.data
        commands = {
            "--help": ["--help"],
            "presets": ["presets"],
            "runs": ["runs"],
            "show ID": ["show", ids[len(ids) // 2]],
            "sweeps": ["sweeps"],
            "sweep scratch-lr-sweep --dry-run": ["sweep", "scratch-lr-sweep", "--dry-run"],
        }
        rows = []
        load_before = os.getloadavg()
        for name, command in commands.items():
            times = [timed([*cli(), *command], env) for _ in range(args.repeat)]
            torch = imported(["-m", "tui_trainer", *command], env, "torch")
            rows.append((name, times, torch))
        console = ["-c", CONSOLE, args.data, str(runs_dir)]
        first = [timed([sys.executable, *console], env, "first screen") for _ in range(args.repeat)]
        rows.append(("console first screen", first, imported(console, env, "torch")))
        load_after = os.getloadavg()
    print(f"CPU: {cpu_model()}; {args.runs} run folders; {args.repeat} runs each")
    print(f"load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    print("wall seconds (min, median, max); cpu: the median's user + system seconds")
    print(f"{'command':34} {'min':>6} {'median':>7} {'max':>6} {'cpu':>6} {'target':>7}  torch")
    for name, times, torch in rows:
        walls = sorted(times)
        median_wall, median_cpu = walls[len(walls) // 2]
        target = TARGETS.get(name)
        print(
            f"{name:34} {walls[0][0]:6.2f} {median_wall:7.2f} {walls[-1][0]:6.2f} "
            f"{median_cpu:6.2f} {f'{target:.1f}' if target else '-':>7}  "
            f"{'yes' if torch else 'no'}"
        )


if __name__ == "__main__":
    main()
