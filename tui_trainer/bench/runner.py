"""`tui-trainer bench`: how fast the engine runs the report's protocol on this machine.

In one process, on the chosen device: the precision probe's table (what `precision=auto` measures
and picks; measured for the table too when the precision is forced, unless `probe` is off); (a)
pure compute, img/s of train steps and evaluation on synthetic tensors already on the device, at
the run's batches, in every precision the probe weighs, side by side, and the choice against the
faster; (b) the engine's epoch (train + evaluate train and val) on the real data, after optional
warm-up epochs, and the check of the first one against the probe's prediction; (c) the same epoch
with the notebook-style reference loop (reference.py); and the ratios between them.
Figures are printed as lines through `say`; the returned dict holds them for callers and tests.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tui_trainer.bench import reference
from tui_trainer.config import build_config, eval_batch
from tui_trainer.data.batches import TensorSplit, normalization, train_images
from tui_trainer.data.layout import find_layout, resolve_data_dir
from tui_trainer.events import Epoch, Log, RunEnded, RunStarted, RunStatus
from tui_trainer.train import engine
from tui_trainer.train.hardware import autocast_dtype, cpu_flags, resolve_device, sync
from tui_trainer.train.host import cpu_threads
from tui_trainer.train.models import apply_freeze, build_model, set_train_mode
from tui_trainer.train.optimizer import make_sgd
from tui_trainer.train.precision_probe import (
    CAP_S,
    PrecisionChoice,
    ProbeResult,
    candidates,
    probe,
    table_lines,
)
from tui_trainer.train.probe_check import check_epoch


@dataclass
class BenchOptions:
    preset: str = "scratch"
    overrides: dict[str, Any] = field(default_factory=dict)
    data_dir: Path | None = None
    epochs: int = 1  # timed engine epochs
    warmup: int | None = None  # engine epochs before the timed ones; None: 1 on a GPU, else 0
    reference_epochs: int = 1  # 0 skips the reference loop
    workers: int = 4  # the reference loop's DataLoader workers
    compute_steps: int | None = None  # timed synthetic batches; None: 3 on a CPU, 20 on a GPU
    probe: bool = True  # time the precisions for the table when the config forces one
    probe_cap_s: float = CAP_S  # the probe's cap per candidate and phase


def pure_compute(
    cfg, num_classes: int, device: torch.device, precision: str, steps: int
) -> dict[str, float]:
    """img/s of train steps (forward, backward, SGD) and of evaluation on synthetic tensors,
    the model and inputs as the engine runs them (channels_last, autocast, freeze policy)."""
    model = build_model(cfg.model, num_classes, "none").to(
        device, memory_format=torch.channels_last
    )
    params = apply_freeze(model, cfg.model, cfg.freeze)
    optimizer = make_sgd(params, cfg, lr=1e-4)  # the engine's, at an lr that keeps it finite
    criterion = nn.CrossEntropyLoss()
    n = max(cfg.batch_size, eval_batch(cfg))
    shape = (n, 3, cfg.image_size, cfg.image_size)
    x = torch.randn(shape, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (cfg.batch_size,), device=device)
    dtype = autocast_dtype(precision)

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x[: cfg.batch_size])
        loss = criterion(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def eval_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model(x[: eval_batch(cfg)])

    def rate(step: Callable[[], None], batch: int) -> float:
        """Batch size / the median time of one batch: robust to other processes' bursts."""
        for _ in range(2 if device.type == "cpu" else 3):
            step()  # warm-up: allocator, oneDNN / cuDNN kernels for the shape
        times = []
        for _ in range(steps):
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - t0)
        return batch / statistics.median(times)

    set_train_mode(model, cfg.model, cfg.freeze)
    train_ips = rate(train_step, cfg.batch_size)
    model.eval()
    return {"train_ips": train_ips, "eval_ips": rate(eval_step, eval_batch(cfg))}


def _engine_epochs(prep: engine.Prepared, say: Callable[[str], None]) -> dict[str, Any]:
    """The engine's run as `tui-trainer run` does it, checkpoints included (into a temporary
    run folder). An epoch's time is the wall time from the end of the epoch before (or the
    run's start) to its own end, so from the second epoch on it holds the hand-over of the
    previous epoch's checkpoints too, and any wait for their background write."""
    epochs: list[float] = []
    computed: list[float] = []  # each epoch's train + evaluation seconds (Epoch.seconds)
    ended: list[RunEnded] = []
    last = [time.perf_counter()]

    def listen(event) -> None:
        now = time.perf_counter()
        if isinstance(event, RunStarted):
            last[0] = now
        elif isinstance(event, Epoch):
            epochs.append(now - last[0])
            computed.append(event.seconds)
            last[0] = now
            seconds = epochs[-1]
            say(f"  engine epoch {event.epoch}: {seconds:.1f} s (train + eval {event.seconds:.1f})")
        elif isinstance(event, RunEnded):
            ended.append(event)
        elif isinstance(event, Log) and "frozen features" in event.message:
            say(f"  {event.message}")

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tui-trainer-bench-") as run_dir:
        engine.train(prep, listen, threading.Event(), run_dir=Path(run_dir))
    total = time.perf_counter() - t0
    if not ended or ended[0].status != RunStatus.COMPLETED:
        raise RuntimeError(f"the engine's run ended {ended[0].status}: {ended[0].message}")
    summary = ended[0].summary
    return {"epoch_seconds": epochs, "computed": computed, "run_seconds": total, "summary": summary}


def _reference_epochs(prep: engine.Prepared, opts: BenchOptions, say) -> list[float]:
    cfg, device = prep.config, prep.device
    mean, std = normalization(cfg)
    transform = reference.reference_transform(cfg.resize, cfg.image_size, mean, std)

    def loader(split: TensorSplit, shuffle: bool):
        paths = [prep.splits.images_dir / p for p in split.paths]
        dataset = reference.ImageListDataset(paths, split.labels.tolist(), transform)
        return reference.make_loader(dataset, cfg.batch_size, shuffle, opts.workers)

    loaders = {
        "train": loader(prep.tensors["train"], True),
        "train_eval": loader(prep.tensors["train"], False),
        "val": loader(prep.tensors["val"], False),
    }
    model = build_model(cfg.model, len(prep.splits.classes), "none")
    params = apply_freeze(model, cfg.model, cfg.freeze)
    model.to(device)
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False  # the notebook's default
    seconds = []
    try:
        for epoch in range(1, opts.reference_epochs + 1):
            times = reference.timed_epoch(model, loaders, optimizer, device)
            seconds.append(times["epoch"])
            say(
                f"  reference epoch {epoch}: {times['epoch']:.1f} s "
                f"(train {times['train']:.1f} s, evaluate {times['evaluate']:.1f} s)"
            )
    finally:
        torch.backends.cudnn.benchmark = benchmark
    return seconds


def run_bench(opts: BenchOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    preset, cfg = build_config(opts.preset, opts.overrides)
    device = resolve_device(cfg.device)
    warmup = opts.warmup if opts.warmup is not None else (1 if device.type == "cuda" else 0)
    cfg = cfg.with_overrides({"epochs": warmup + opts.epochs})
    threads = cpu_threads(cfg.threads)
    torch.set_num_threads(threads)
    data_dir = resolve_data_dir(opts.data_dir)
    find_layout(data_dir)  # a wrong folder fails before the probe's seconds
    choice, probed = _precision(cfg, device, threads, opts, say)
    t0 = time.perf_counter()
    prep = engine.prepare(cfg, data_dir, precision=choice)
    prepare_s = time.perf_counter() - t0
    n_train, n_val = len(prep.tensors["train"]), len(prep.tensors["val"])
    classes = len(prep.splits.classes)
    say(
        f"bench: preset {preset.name}, {cfg.model}, freeze={cfg.freeze}, augment={cfg.augment}, "
        f"{classes} classes, {cfg.image_size} px, batch {cfg.batch_size}, device {device}, "
        f"precision {prep.precision}, {torch.get_num_threads()} CPU threads"
    )
    say(f"data: train {n_train}, val {n_val} images; prepare (decode or cache) {prepare_s:.1f} s")
    say(f"fast paths: {', '.join(prep.fast_paths)}")
    result: dict[str, Any] = {"prepare_seconds": prepare_s, "fast_paths": prep.fast_paths}
    result["precision"] = prep.precision

    steps = opts.compute_steps or (3 if device.type == "cpu" else 20)
    pure_epoch = _compute_figures(prep, probed, steps, result, say)

    say(f"(b) engine: {warmup} warm-up + {opts.epochs} timed epoch(s), then test:")
    eng = _engine_epochs(prep, say)
    _check_row(prep, probed, eng["computed"][0], result, say)
    timed = eng["epoch_seconds"][warmup:]
    engine_epoch = sum(timed) / len(timed)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    say(
        f"  engine epoch {engine_epoch:.1f} s; whole run {eng['run_seconds']:.1f} s "
        f"({cfg.epochs} epochs and test); peak RSS {rss_gb:.2f} GB"
    )
    say(
        f"  engine epoch / pure compute: {engine_epoch / pure_epoch:.2f}x "
        f"(val acc {eng['summary']['max_val_acc']:.3f})"
    )
    result.update(engine_epoch_seconds=engine_epoch, engine=eng, peak_rss_gb=rss_gb)

    if opts.reference_epochs > 0:
        _reference_figures(prep, opts, eng["run_seconds"], engine_epoch, result, say)
    return result


def _precision(
    cfg, device, threads: int, opts: BenchOptions, say
) -> tuple[PrecisionChoice | None, ProbeResult | None]:
    """Print the probe's table (cached or measured now); the precision for `prepare` (the
    probe's choice for `auto`, the config's otherwise; None: prepare decides, nothing to time)
    and the probe."""
    forced = cfg.precision != "auto"
    if len(candidates(device)) == 1 or (forced and not opts.probe):
        return None, None
    result = probe(cfg, device, threads=threads, cap_s=opts.probe_cap_s)
    for line in table_lines(result):
        say(line)
    if forced:
        say(f"  the config forces precision={cfg.precision}")
        return PrecisionChoice(cfg.precision), result
    return PrecisionChoice(result.choice, result), result


def _check_row(prep, probed: ProbeResult | None, seconds: float, result, say) -> None:
    """The first engine epoch's img/s against the probe's prediction for its precision."""
    if probed is None:
        return say("  precision check: no probe to compare with")
    if "frozen_features" in prep.fast_paths:
        return say("  precision check: none (the head trains on cached features)")
    n_train, n_val = len(prep.tensors["train"]), len(prep.tensors["val"])
    log = check_epoch(probed, prep.precision, n_train, n_val, seconds)
    say(f"  {log.message if log else f'precision check: no {prep.precision} figure'}")
    result["check"] = log.message if log else None
    return None


def _compute_figures(prep: engine.Prepared, probed, steps: int, result, say) -> float:
    """(a): pure compute in each precision `_compared` names, side by side, and the run's
    precision against the fastest, into `result`; the run's protocol epoch's pure-compute
    seconds."""
    cfg, device = prep.config, prep.device
    n_train, n_val = len(prep.tensors["train"]), len(prep.tensors["val"])
    trained = train_images(n_train, cfg)  # last_batch=drop leaves out the last partial batch
    say(
        f"(a) pure compute, batch {cfg.batch_size} (eval {eval_batch(cfg)}), random tensors, "
        f"median of {steps} batches; an epoch trains {trained} images, evaluates "
        f"{n_train + n_val}:"
    )
    say(f"  {'precision':<9} {'train img/s':>11} {'eval img/s':>10} {'epoch s':>8}")
    compute, epoch_s = {}, {}
    for precision in _compared(prep, probed):
        c = pure_compute(cfg, len(prep.splits.classes), device, precision, steps)
        compute[precision] = c
        epoch_s[precision] = trained / c["train_ips"] + (n_train + n_val) / c["eval_ips"]
        ratio = epoch_s["fp32"] / epoch_s[precision]
        say(
            f"  {precision:<9} {c['train_ips']:>11.1f} {c['eval_ips']:>10.1f} "
            f"{epoch_s[precision]:>8.1f}  {ratio:.2f}x fp32"
        )
    fastest = min(epoch_s, key=epoch_s.__getitem__)
    how = "precision=auto" if cfg.precision == "auto" else "forced"
    verdict = "the faster" if prep.precision == fastest else f"not the faster ({fastest})"
    say(f"  choice: {prep.precision} ({how}), {verdict} in pure compute")
    pure_epoch = epoch_s[prep.precision]
    result.update(compute=compute, pure_epoch_seconds=pure_epoch, fastest=fastest)
    return pure_epoch


def _compared(prep: engine.Prepared, probed: ProbeResult | None) -> list[str]:
    """fp32, the challengers where they are native (a GPU, a CPU with AVX512-BF16 or AMX) or the
    probe found them usable, and the run's precision: an emulated bf16 (minutes a batch on an
    AVX2 CPU) is left out."""
    native = prep.device.type == "cuda" or bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    usable = {r.precision for r in probed.rates if r.usable} if probed else set()
    picks = [p for p in candidates(prep.device) if p == "fp32" or native or p in usable]
    return list(dict.fromkeys([*picks, prep.precision]))


def _reference_figures(prep, opts, run_seconds, engine_epoch, result, say) -> None:
    """(c): the reference loop's epochs and the ratios to the engine's, into `result`."""
    cfg = prep.config
    say(
        f"(c) reference loop: PIL per item, Resize {cfg.resize} + CenterCrop "
        f"{cfg.image_size}, DataLoader workers={opts.workers}, NCHW, fp32:"
    )
    with warnings.catch_warnings():
        # 4 workers on a 2-core machine make torch warn: the notebook did it that way
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        ref = _reference_epochs(prep, opts, say)
    ref_epoch = sum(ref) / len(ref)
    run_estimate = ref_epoch * cfg.epochs
    say(f"  reference epoch {ref_epoch:.1f} s")
    say(
        f"ratios: engine epoch {ref_epoch / engine_epoch:.2f}x faster than the reference; "
        f"whole run {run_estimate / run_seconds:.2f}x (reference estimated as "
        f"{ref_epoch:.1f} s x {cfg.epochs} epochs = {run_estimate:.0f} s, without its test)"
    )
    result.update(reference_epoch_seconds=ref_epoch, reference_run_estimate=run_estimate)
