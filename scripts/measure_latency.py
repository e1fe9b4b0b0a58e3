"""Key-press latency of the console while a run trains in it, on real data.

Starts the app headless (Textual's Pilot), starts a scratch run on a few Caltech-101 classes
from the form, waits until steps arrive, then presses keys a person would press (switch
screens, move the results table's cursor) at a human pace. Latency of one press: from the key
event entering the app until the state it changes has changed and the screen has been
refreshed after it. Prints p50 / p95 / max in ms.

    PYTHONPATH=. python scripts/measure_latency.py --data ../shared/caltech101
    PYTHONPATH=. python scripts/measure_latency.py --data ../shared/caltech101 --threads 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from textual import events

from tui_trainer.tui.app import make_app
from tui_trainer.tui.widgets.results_table import ResultsTable

CPU_MS: dict[str, list[float]] = {}  # CPU time of the UI thread per press, by key
WALL_MS: dict[str, list[float]] = {}

# (key, what has changed once the app has handled it)
ROUND = (
    ("3", lambda app: app.main.current == "runs"),
    ("right", lambda app: app.screen.query_one(ResultsTable).cursor_column == 1),
    ("left", lambda app: app.screen.query_one(ResultsTable).cursor_column == 0),
    ("2", lambda app: app.main.current == "watch"),
    ("1", lambda app: app.main.current == "launch"),
)


def engine(threads: int):
    """launch.start_run, with the torch thread count set on the config the form built."""
    from tui_trainer.runs.launch import start_run

    def start(config, **kwargs):
        return start_run(config.with_overrides({"threads": threads}), **kwargs)

    return start


async def press_and_time(app, key: str, done) -> float:
    started, cpu = time.perf_counter(), time.thread_time()  # the event loop is this thread
    app.post_message(events.Key(key, key if len(key) == 1 else None))
    while not done(app):
        await asyncio.sleep(0.001)
    painted = asyncio.Event()
    app.call_after_refresh(painted.set)
    await painted.wait()
    wall_ms = (time.perf_counter() - started) * 1000
    CPU_MS.setdefault(key, []).append((time.thread_time() - cpu) * 1000)
    WALL_MS.setdefault(key, []).append(wall_ms)
    return wall_ms


async def press_rounds(app, pilot, args) -> list[float]:
    await pilot.press("3")  # let the results screen mount once before timing
    await pilot.press("2")
    latencies = []
    for _ in range(args.rounds):
        for key, done in ROUND:
            latencies.append(await press_and_time(app, key, done))
            await asyncio.sleep(args.gap)
    return latencies


async def measure(args) -> list[float]:
    runs_dir = Path(tempfile.mkdtemp(prefix="latency-runs-"))
    app = make_app(data_dir=args.data, runs_dir=runs_dir, device="cpu", engine=engine(args.threads))
    async with app.run_test(size=(100, 30)) as pilot:
        while not app.data_checked:
            await pilot.pause(0.1)
        if app.data_problem:
            sys.exit(app.data_problem)
        form = {
            "classes": str(args.classes),
            "image_size": "64",
            "resize": "72",
            "batch_size": str(args.batch_size),
            "epochs": "1000",  # trains for the whole measurement; stopped at the end
        }
        for key, value in form.items():
            app.screen.query_one(f"#{key}").value = value
        if args.idle:
            return await press_rounds(app, pilot, args)
        await pilot.press("ctrl+s")
        t0 = time.monotonic()
        while not (app.live and len(app.live.steps) >= 2):
            if app.current_job is None and app.live is None:  # the form refused the run
                notices = [n.message for n in app._notifications]
                sys.exit("the run did not start: " + "; ".join(notices))
            if app.current_job is None:
                sys.exit("the run ended before it trained: " + "; ".join(app.live.log))
            await pilot.pause(0.1)
        print(
            f"training: {app.live.run_id} ({app.live.device}), first steps after "
            f"{time.monotonic() - t0:.1f}s; pressing keys...",
            flush=True,
        )
        latencies = await press_rounds(app, pilot, args)
        steps = len(app.live.steps)
        app.stop_current()
        while app.current_job is not None:
            await pilot.pause(0.1)
        print(f"steps trained during the measurement: {steps}, run ended {app.live.status}")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=20, help="5 presses per round")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between presses")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--idle", action="store_true", help="baseline: press keys, train nothing")
    parser.add_argument("--nice", type=int, default=None, help="training thread nice value")
    args = parser.parse_args()
    if args.nice is not None:
        from tui_trainer.tui import app as app_module

        app_module.TRAINING_NICE = args.nice
    latencies = asyncio.run(measure(args))
    for key, values in WALL_MS.items():
        print(
            f"  {key:>5}: wall p50 {statistics.median(values):.0f} ms, "
            f"UI thread CPU p50 {statistics.median(CPU_MS[key]):.0f} ms"
        )
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(
        f"{len(latencies)} presses: p50 {statistics.median(latencies):.0f} ms, "
        f"p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
