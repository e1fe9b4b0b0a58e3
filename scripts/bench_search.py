"""What pruning saves: the shipped scratch search (presets/scratch-search.toml, AlexNet from
scratch) with the median pruner and without, same seeded sampler, same space. Not a test: it
prints a table (epochs trained, wall time, best trial's max val accuracy) and the CPU model.

The issue's goal: at most half the epochs with a best trial within 0.02 of the unpruned best.

    PYTHONPATH=. python scripts/bench_search.py --data $TUI_TRAINER_DATA    # 20 classes, 64 px,
                                                                           # 24 trials x 12 epochs
    PYTHONPATH=. python scripts/bench_search.py --trials 2 --epochs 2 --classes 3   # a quick look

Batch 64, not the preset's 256: 20 classes at 64 px are ~1,000 training images, 4 steps an epoch
at 256, and in 12 epochs no trial leaves the majority class. Each search runs `--workers`
processes of one thread each, as `tune --parallel` does (on 2 cores, two single-thread workers
train more images a second than one worker with two threads at this small batch).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import platform
import tempfile
import threading
import time
from pathlib import Path

from tui_trainer.data.layout import resolve_data_dir
from tui_trainer.studies import search
from tui_trainer.studies.search_spec import load_search
from tui_trainer.studies.search_view import study_view


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="dataset (else $TUI_TRAINER_DATA)")
    p.add_argument("--runs-dir", type=Path, default=None, help="else a temporary folder")
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="worker processes a search")
    p.add_argument("--device", default="auto")
    p.add_argument("--startup", type=int, default=5, help="median: trials before any pruning")
    p.add_argument("--warmup", type=int, default=2, help="median: epochs before a verdict")
    return p.parse_args()


def _work(worker: search.Worker) -> None:
    search.run_worker(worker, threading.Event())


def one_search(spec, base, overrides, runs_dir: Path, data_dir: Path, workers: int) -> dict:
    worker = search.Worker(spec, base, overrides, runs_dir, data_dir)
    started = time.monotonic()
    # spawned, not forked: a forked child of a process with torch's threads can deadlock
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_work, args=(worker,)) for _ in range(workers)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    wall = time.monotonic() - started
    view = study_view(runs_dir, spec)
    best = view.best
    return {
        "pruner": spec.pruner,
        "trials": view.budget.trials_finished,
        "pruned": sum(t.state == "pruned" for t in view.trials),
        "epochs": view.budget.epochs_trained,
        "full": view.budget.epochs_full,
        "wall": wall,
        "best": best.value if best else None,
        "best_trial": best.number if best else None,
    }


def main() -> None:
    args = parse_args()
    data_dir = resolve_data_dir(args.data)
    spec, base = load_search("scratch-search", trials=args.trials)
    overrides = {
        "classes": args.classes,
        "image_size": args.image_size,
        "resize": max(args.image_size, round(args.image_size * 256 / 224)),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "threads": 1 if args.workers > 1 else 0,
        "device": args.device,
    }
    median = {"n_startup_trials": args.startup, "n_warmup_steps": args.warmup}
    root = args.runs_dir or Path(tempfile.mkdtemp(prefix="bench-search-"))
    rows = []
    for pruner, settings in (("median", median), ("none", {})):
        variant = dataclasses.replace(
            spec, name=f"bench-{pruner}", pruner=pruner, pruner_settings=settings
        )
        rows.append(one_search(variant, base, overrides, root / pruner, data_dir, args.workers))
    print(f"CPU: {cpu_model()}; device {args.device}; runs in {root}")
    print(
        f"scratch-search: {args.trials} trials x {args.epochs} epochs, {args.classes} classes, "
        f"{args.image_size} px, batch {args.batch_size}, TPE seed {spec.seed}, {args.workers} "
        f"worker(s); median: startup {args.startup}, warmup {args.warmup}"
    )
    print(f"{'pruner':<8} {'trials':>6} {'pruned':>6} {'epochs':>12} {'wall s':>8} {'best':>7}")
    for r in rows:
        best = "-" if r["best"] is None else f"{r['best']:.4f}"
        epochs = f"{r['epochs']}/{r['full']}"
        print(
            f"{r['pruner']:<8} {r['trials']:>6} {r['pruned']:>6} {epochs:>12} "
            f"{r['wall']:>8.1f} {best:>7}"
        )
    pruned, full = rows
    if pruned["best"] is not None and full["best"] is not None and full["epochs"]:
        share = pruned["epochs"] / full["epochs"]
        gap = full["best"] - pruned["best"]
        print(f"pruned/unpruned epochs: {share:.2f} (goal <= 0.5); best gap: {gap:+.4f} (<= 0.02)")


if __name__ == "__main__":
    main()
