"""precision=auto: the choice rule on made-up rates, the cap on a made-up clock, the cache and
its key, one real (tiny) measurement, and a run that records its probe and a resume that
uses the recorded precision without measuring."""

import functools
import json
import os
import re
import threading

import pytest
import torch

from tests.support.processes import small_config
from tests.support.runs import fake_run
from tui_trainer.errors import Stopped, UserError
from tui_trainer.events import Epoch, Log, RunStarted, Step
from tui_trainer.files import write_json_atomic
from tui_trainer.runs.launch import resume_run, start_run
from tui_trainer.runs.store import Run
from tui_trainer.train import precision_probe as pp
from tui_trainer.train import precision_timing as pt
from tui_trainer.train.precision_timing import CAP_S, SCOUT_FLOOR_S, CandidateRate, ChallengerLimits
from tui_trainer.train.step_timing import Deadline, OverCap, PhaseTiming, time_steps

CPU = torch.device("cpu")


def rate(precision, train, evaluate, **kw):
    return CandidateRate(precision, train, evaluate, **kw)


# --- the rule ----------------------------------------------------------------------------------


def test_bf16_is_picked_when_its_epoch_is_clearly_faster():
    assert pp.choose([rate("fp32", 10, 30), rate("bf16", 18, 60)]) == "bf16"


def test_fp32_is_kept_when_bf16_is_slower_or_only_a_little_faster():
    assert pp.choose([rate("fp32", 10, 30), rate("bf16", 2, 6)]) == "fp32"
    assert pp.choose([rate("fp32", 10, 30), rate("bf16", 11, 33)]) == "fp32"  # 1.1x


def test_the_rule_weighs_evaluation_as_an_epoch_does():
    # trains 1.5x faster, evaluates 3x slower: the epoch (1 train + 2 eval per image) is slower
    assert pp.choose([rate("fp32", 10, 30), rate("bf16", 15, 10)]) == "fp32"
    fp32, bf16 = rate("fp32", 10, 30), rate("bf16", 20, 60)
    assert bf16.epoch_ips == pytest.approx(2 * fp32.epoch_ips)
    assert fp32.epoch_ips == pytest.approx(1 / (1 / 10 + 2 / 30))


def test_a_capped_or_failed_challenger_never_wins():
    assert pp.choose([rate("fp32", 10, 30), rate("bf16", 100, 300, capped=True)]) == "fp32"
    failed = rate("bf16", None, None, error="not supported")
    assert pp.choose([rate("fp32", 10, 30), failed]) == "fp32"


def test_the_fastest_of_several_winners_is_picked():
    rates = [rate("fp32", 10, 30), rate("bf16", 15, 45), rate("fp16", 30, 90)]
    assert pp.choose(rates) == "fp16"
    assert pp.choose([rate("fp32", None, None, error="x"), rate("bf16", 50, 90)]) == "fp32"


def test_the_candidates_follow_the_device(monkeypatch):
    assert pp.candidates(CPU) == ("fp32", "bf16")
    assert pp.candidates(torch.device("mps")) == ("fp32",)
    monkeypatch.setattr(pp, "cuda_has_native_bf16", lambda: False)
    assert pp.candidates(torch.device("cuda")) == ("fp32", "bf16", "fp16")
    monkeypatch.setattr(pp, "cuda_has_native_bf16", lambda: True)
    assert pp.candidates(torch.device("cuda")) == ("fp32", "bf16")


# --- the cap, on a clock the steps advance ---------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def stepping(clock, seconds_per_layer, layers, log):
    """A step of `layers` layers that checks the deadline after each, as the probe model does."""

    def step(deadline: Deadline):
        log.append(clock.now)
        for _ in range(layers):
            clock.now += seconds_per_layer
            deadline.check()

    return step


def test_a_slow_step_is_cut_at_the_cap_and_counts_as_capped():
    clock, starts = FakeClock(), []
    t = time_steps(stepping(clock, 4.0, 15, starts), warmup=1, steps=2, cap_s=5, clock=clock)
    assert t.capped and t.steps == 0
    assert clock.now == pytest.approx(108.0)  # cut at the second layer past the cap, not at 160
    assert t.seconds_per_step == pytest.approx(8.0) and len(starts) == 1


def test_a_fast_phase_times_its_steps_after_the_warmup():
    clock, starts = FakeClock(), []
    t = time_steps(stepping(clock, 0.1, 5, starts), warmup=1, steps=3, cap_s=5, clock=clock)
    assert not t.capped and t.steps == 3 and len(starts) == 4
    assert t.seconds_per_step == pytest.approx(0.5) and t.first_done_s == pytest.approx(1.0)


def test_no_step_starts_that_would_end_past_the_cap():
    clock, starts = FakeClock(), []
    t = time_steps(stepping(clock, 1.0, 2, starts), warmup=1, steps=5, cap_s=5, clock=clock)
    assert not t.capped and t.steps == 1  # 2 s warm-up, 2 s step; a third would end at 6 s
    assert clock.now == pytest.approx(104.0)


def test_the_baseline_is_never_cut():
    clock, starts = FakeClock(), []
    step = stepping(clock, 4.0, 3, starts)
    t = time_steps(step, warmup=1, steps=2, cap_s=5, cut=False, clock=clock)
    assert not t.capped and t.steps == 1 and t.seconds_per_step == pytest.approx(12.0)


def test_a_challenger_gets_as_long_as_the_baseline_took_and_a_cpu_one_a_scout_step_first():
    slow = PhaseTiming(2.0, 1, False, first_done_s=6.0, first_step_s=2.5)
    assert ChallengerLimits.after(slow, CAP_S, CPU) == ChallengerLimits(6.0, 2.5)
    fast = PhaseTiming(0.1, 2, False, first_done_s=0.4, first_step_s=0.2)
    assert ChallengerLimits.after(fast, CAP_S, CPU) == ChallengerLimits(CAP_S, SCOUT_FLOOR_S)
    assert ChallengerLimits.after(fast, CAP_S, torch.device("cuda")).scout_s is None
    assert ChallengerLimits.after(None, CAP_S, CPU) == ChallengerLimits(CAP_S, None)


def test_a_stop_ends_the_probe():
    clock, stop = FakeClock(), threading.Event()
    stop.set()
    with pytest.raises(Stopped, match="precision=auto"):
        time_steps(stepping(clock, 1, 1, []), warmup=1, steps=1, cap_s=5, clock=clock, stop=stop)
    with pytest.raises(OverCap):
        Deadline(0.0, clock).check()


# --- the cache and its key ---------------------------------------------------------------------


@pytest.fixture
def fake_measure(monkeypatch):
    """measure() replaced by made-up rates (bf16 twice as fast); the calls it got."""
    calls = []

    def measure(config, device, precisions, **kw):
        calls.append((config.model, kw["batch"], kw["threads"]))
        return (rate("fp32", 10.0, 30.0), rate("bf16", 20.0, 60.0))

    monkeypatch.setattr(pp, "measure", measure)
    return calls


def test_a_measurement_is_cached_and_reused(fake_measure):
    cfg = small_config(precision="auto")
    first = pp.probe(cfg, CPU, threads=1)
    assert not first.cached and first.choice == "bf16" and len(fake_measure) == 1
    again = pp.probe(cfg, CPU, threads=1)
    assert again.cached and again.choice == "bf16" and again.rates == first.rates
    assert len(fake_measure) == 1
    stored = json.loads(pp.cache_path().read_text())
    assert stored["version"] == pp.CACHE_VERSION and len(stored["entries"]) == 1
    # the decision is for the run's batch: another batch is measured for itself
    larger = pp.probe(cfg.with_overrides({"batch_size": 256}), CPU, threads=1)
    assert not larger.cached and larger.key.batch == 256 and fake_measure[-1][1] == 256


def test_a_new_torch_device_model_or_thread_count_measures_again(fake_measure, monkeypatch):
    cfg = small_config(precision="auto")
    pp.probe(cfg, CPU, threads=1)
    assert not pp.probe(cfg, CPU, threads=2).cached
    assert not pp.probe(cfg.with_overrides({"model": "resnet50"}), CPU, threads=1).cached
    monkeypatch.setattr(pp, "hardware_name", lambda device: "Another CPU (flags 0123)")
    assert not pp.probe(cfg, CPU, threads=1).cached
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert not pp.probe(cfg, CPU, threads=1).cached
    assert pp.probe(cfg, CPU, threads=1).cached
    assert len(fake_measure) == 5


def test_a_damaged_cache_is_measured_again_and_rewritten(fake_measure):
    pp.cache_path().parent.mkdir(parents=True)
    pp.cache_path().write_text("{not json")
    assert not pp.probe(small_config(precision="auto"), CPU, threads=1).cached
    assert len(json.loads(pp.cache_path().read_text())["entries"]) == 1


def test_a_cache_entry_of_the_wrong_types_is_measured_again(fake_measure):
    cfg = small_config(precision="auto")
    pp.probe(cfg, CPU, threads=1)
    stored = json.loads(pp.cache_path().read_text())
    entry = next(iter(stored["entries"].values()))
    entry["rates"][0]["train_ips"] = "fast"  # valid JSON, not a rate
    pp.cache_path().write_text(json.dumps(stored))
    again = pp.probe(cfg, CPU, threads=1)
    assert not again.cached and again.choice == "bf16" and len(fake_measure) == 2


def test_an_explicit_precision_is_used_as_it_is(fake_measure):
    assert pp.decide(small_config(precision="bf16"), CPU, 1) == pp.PrecisionChoice("bf16")
    assert pp.decide(small_config(precision="auto"), torch.device("mps"), 1).precision == "fp32"
    assert fake_measure == [] and not pp.cache_path().exists()
    chosen = pp.decide(small_config(precision="auto"), CPU, 1)
    assert chosen.precision == "bf16" and chosen.probe is not None


# --- one real measurement, and a run -----------------------------------------------------------


def test_a_real_probe_leaves_the_rng_and_threads_as_they_were():
    torch.manual_seed(7)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    cfg = small_config(precision="auto", batch_size=4)  # above the scout's 2 images
    result = pp.probe(cfg, CPU, threads=1, cap_s=0.5)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    fp32 = result.rates[0]
    assert fp32.precision == "fp32" and fp32.usable and fp32.train_ips > 0
    assert [r.precision for r in result.rates] == ["fp32", "bf16"]
    assert result.choice in ("fp32", "bf16") and result.key.batch == 4
    lines = pp.table_lines(result)
    assert lines[0].startswith("precision probe (measured in ") and "choice:" in lines[-2]


def test_a_run_records_its_probe_and_a_resume_does_not_measure(tiny_data, tmp_path, monkeypatch):
    def fp32_wins(config, device, precisions, **kw):
        return (rate("fp32", 10.0, 30.0), rate("bf16", 2.0, 6.0, capped=True))

    monkeypatch.setattr(pp, "measure", fp32_wins)
    stop = threading.Event()

    def stop_at_once(event):
        if isinstance(event, Step):
            stop.set()

    cfg = small_config(precision="auto", epochs=1)
    kw = dict(preset="t", overrides={}, data_dir=tiny_data, runs_dir=tmp_path)
    run, ended = start_run(cfg, **kw, stop=stop, on_event=stop_at_once)
    assert ended.status == "interrupted"
    meta = run.meta()
    assert meta["config"]["precision"] == "auto" and meta["precision"] == "fp32"
    assert meta["precision_probe"]["choice"] == "fp32"
    assert [r["precision"] for r in meta["precision_probe"]["rates"]] == ["fp32", "bf16"]

    def no_probe(*args, **kwargs):
        raise AssertionError("a resume measured the precision again")

    monkeypatch.setattr(pp, "measure", no_probe)
    pp.cache_path().unlink()  # nothing cached either: only config.json can tell
    events = []
    _, resumed = resume_run(run.id, runs_dir=tmp_path, on_event=events.append)
    assert resumed.status == "completed"
    assert next(e for e in events if isinstance(e, RunStarted)).precision == "fp32"
    assert [e.epoch for e in events if isinstance(e, Epoch)] == [1]


def test_a_resume_of_an_fp16_run_on_the_cpu_says_where_to_resume_it(tiny_data, tmp_path):
    fake_run(tmp_path, "20261201-000000-gpu", "scratch", "failed", {}, device="cpu")
    run = Run(tmp_path / "20261201-000000-gpu")
    meta = run.meta() | {"precision": "fp16", "data_dir": str(tiny_data)}  # as a GPU run's
    write_json_atomic(run.config_path, meta)
    with pytest.raises(UserError, match="trains in fp16, which is for GPUs: resume it where"):
        resume_run(run.id, runs_dir=tmp_path)


def test_under_torchrun_rank_0_measures_and_every_rank_uses_its_choice(
    tiny_data, tmp_path, monkeypatch
):
    from tests.support.ranks import on_two_ranks
    from tui_trainer.runs import launch
    from tui_trainer.train.topology import Topology

    def measure(config, device, precisions, **kw):
        assert os.environ["RANK"] == "0", "a rank other than 0 measured"
        return (rate("fp32", 10.0, 30.0), rate("bf16", 20.0, 60.0))

    monkeypatch.setattr(pp, "measure", measure)
    cfg = small_config(precision="auto", epochs=1)

    def prepare(rank: int) -> None:
        os.environ["TUI_TRAINER_CACHE"] = str(tmp_path / f"cache-{rank}")  # no shared answer
        topology = Topology.join(cfg)
        try:
            prep = launch._prepare(cfg, tiny_data, lambda e: None, threading.Event(), topology)
            assert prep.precision == "bf16" and prep.precision_probe.choice == "bf16"
        finally:
            topology.shutdown()

    assert on_two_ranks(prepare) == {0: "ok", 1: "ok"}


def test_the_probe_of_a_pretrained_preset_never_loads_its_weights():
    # weights=imagenet, and TORCH_HOME (a temporary folder) holds none: a load would download
    cfg = small_config(precision="auto", batch_size=2, weights="imagenet", freeze="conv")
    (fp32, bf16) = pp.measure(
        cfg, CPU, ("fp32", "bf16"), batch=2, eval_batch=2, threads=1, cap_s=0.3
    )
    assert fp32.usable and fp32.train_ips > 0 and bf16.precision == "bf16"


# --- the run's batch, on made-up step costs ----------------------------------------------------

# seconds of a step of n images: (fixed, per image). bf16's fixed part (weight casts, kernels)
# makes it 5x slower at batch 8; its per-image part makes it over 2x faster at 256
COSTS = {
    ("fp32", "train"): (0.01, 0.004),
    ("bf16", "train"): (0.2, 0.0012),
    ("fp32", "eval"): (0.005, 0.0015),
    ("bf16", "eval"): (0.08, 0.0005),
}


@pytest.fixture
def costed(monkeypatch):
    """The probe's steps replaced by COSTS on a clock they advance (the model is real); the
    batches each (precision, phase) stepped at."""
    clock, seen = FakeClock(), []

    def steps(model, opt, data, config, precision):
        def phase(name):
            def step(n):
                fixed, per_image = COSTS[precision, name]
                clock.now += fixed + per_image * n
                seen.append((precision, name, n))

            return step

        return {"train": phase("train"), "eval": phase("eval")}

    monkeypatch.setattr(pt, "_steps", steps)
    monkeypatch.setattr(pp, "measure", functools.partial(pt.measure, clock=clock))
    return seen


def test_auto_picks_bf16_for_a_batch_256_run_and_fp32_for_a_batch_8_run(costed):
    large = pp.probe(small_config(precision="auto", batch_size=256), CPU, threads=1)
    assert large.choice == "bf16" and large.key.batch == 256 and large.key.eval_batch == 256
    fp32, bf16 = large.rates
    assert (fp32.train_batch, fp32.eval_batch) == (256, 256) == (bf16.train_batch, bf16.eval_batch)
    assert bf16.train_ips == pytest.approx(256 / (0.2 + 0.0012 * 256))
    assert ("bf16", "train", 256) in costed and ("fp32", "train", 16) in costed  # the ramp
    assert "the run's" in pp.table_lines(large)[-1]
    small = pp.probe(small_config(precision="auto", batch_size=8), CPU, threads=1)
    assert small.choice == "fp32" and small.key.batch == 8 and not small.cached
    assert small.rates[1].train_ips == pytest.approx(8 / (0.2 + 0.0012 * 8))


def test_the_eval_batch_is_timed_for_itself(costed):
    cfg = small_config(precision="auto", batch_size=8, eval_batch_size=256)
    result = pp.probe(cfg, CPU, threads=1)
    assert result.key.eval_batch == 256 and result.rates[0].eval_batch == 256
    assert ("bf16", "eval", 256) in costed and ("bf16", "eval", 8) not in costed


def test_a_batch_past_the_budget_is_timed_smaller_and_says_so(costed, monkeypatch):
    monkeypatch.setitem(pt.RAMP_S, "cpu", 0.6)  # fp32 train: 8, 16, 32, 64 (0.56 s), not 128
    result = pp.probe(small_config(precision="auto", batch_size=256), CPU, threads=1)
    assert [r.train_batch for r in result.rates] == [64, 64]
    assert [r.eval_batch for r in result.rates] == [128, 128]
    assert result.key.batch == 256  # on the line through 64 and 32: the costs' own rate
    assert result.rates[0].train_ips == pytest.approx(256 / (0.01 + 0.004 * 256))
    assert result.rates[1].eval_ips == pytest.approx(256 / (0.08 + 0.0005 * 256))
    assert ("fp32", "train", 32) in costed and result.choice == "bf16"
    assert pp.table_lines(result)[-1] == (
        "  timed at batch 64 (eval 128) and half: extrapolated to the run's 256 (eval 256)"
    )
    assert not any(n > 64 for precision, phase, n in costed if phase == "train")


def test_a_ramp_step_projected_past_the_budget_is_not_taken():
    clock, sizes = FakeClock(), []

    def step_at(n):
        def step(deadline):
            sizes.append(n)
            clock.now += 1.0 + 0.01 * n  # projected through two points: 1.32 s at 32

        return step

    batch, t = pt.ramp(step_at, batch=256, start=8, budget_s=4.5, warmup=2, steps=2, clock=clock)
    assert batch == 16 and sizes == [8, 8, 16, 16, 16, 16]
    assert t.seconds_per_step == pytest.approx(1.16) and t.first_step_s == pytest.approx(1.16)


def test_a_cache_entry_of_the_old_probe_is_measured_again(fake_measure):
    cfg = small_config(precision="auto")
    key = pp.probe_key(cfg, CPU, 1)
    entry = {"key": pp.asdict(key), "rates": [pp.asdict(rate("fp32", 10.0, 30.0))]}
    pp.cache_path().parent.mkdir(parents=True)
    write_json_atomic(pp.cache_path(), {"version": 1, "entries": {key.digest(): entry}})
    assert pp.CACHE_VERSION > 1
    assert not pp.probe(cfg, CPU, threads=1).cached and len(fake_measure) == 1


def test_under_torchrun_the_key_holds_a_rank_s_share_of_the_batches():
    cfg = small_config(precision="auto", batch_size=256, eval_batch_size=512)
    key = pp.probe_key(cfg, CPU, 1, world=4)
    assert (key.batch, key.eval_batch) == (64, 128)


# --- the first epoch against the prediction ----------------------------------------------------


def test_a_first_epoch_far_from_the_prediction_is_reported():
    from tui_trainer.train.probe_check import check_epoch

    result = pp.ProbeResult(
        pp.probe_key(small_config(), CPU, 1), (rate("fp32", 10.0, 40.0),), "fp32", False, 0.0
    )
    # 100 train + 50 val images: 100 / 10 + 150 / 40 = 13.75 s predicted
    assert check_epoch(result, "fp32", 100, 50, 13.75).level == "info"
    assert "within 1.5x" in check_epoch(result, "fp32", 100, 50, 20.0).message
    slow = check_epoch(result, "fp32", 100, 50, 30.0)
    assert slow.level == "warning" and slow.message == (
        "precision check: epoch 1 3.3 img/s, probe 7.3 (fp32): mispredicted 2.2x"
    )
    assert check_epoch(result, "fp32", 100, 50, 5.0).level == "warning"  # 2.75x faster
    assert check_epoch(result, "fp32", 400, 200, 13.75, world=4).level == "info"
    assert check_epoch(result, "bf16", 100, 50, 13.75) is None  # no bf16 figure


def test_a_run_logs_its_first_epoch_against_the_probe(tiny_data, tmp_path, monkeypatch):
    def absurd(config, device, precisions, **kw):  # far faster than any real epoch
        return (rate("fp32", 1e7, 3e7), rate("bf16", 1e6, 3e6))

    monkeypatch.setattr(pp, "measure", absurd)
    events = []
    cfg = small_config(precision="auto", epochs=2)
    kw = dict(preset="t", overrides={}, data_dir=tiny_data, runs_dir=tmp_path)
    _, ended = start_run(cfg, **kw, on_event=events.append)
    assert ended.status == "completed"
    checks = [e for e in events if isinstance(e, Log) and "precision check" in e.message]
    assert len(checks) == 1 and checks[0].level == "warning"
    assert re.search(
        r"epoch 1 [\d.]+ img/s, probe [\d.]+ \(fp32\): mispredicted", checks[0].message
    )
    # the contradicted decision is not kept: the next run measures again
    assert json.loads(pp.cache_path().read_text())["entries"] == {}
