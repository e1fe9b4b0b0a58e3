"""`tui-trainer tune`: a search on real images (a tiny subset), through the installed entry
point: a study that completes, pruned runs, two workers sharing one journal, a killed worker's
trial resumed by a rerun."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from tests.support.processes import subprocess_env
from tests.support.searches import search_file, search_setup, trial_runs
from tests.support.terminal import entry_point
from tui_trainer.studies.search_spec import load_search
from tui_trainer.studies.search_view import study_view

TIMEOUT = 600


def tune(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [entry_point(), "tune", *map(str, args)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        **kwargs,
    )


def spawn_tune(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [entry_point(), "tune", *map(str, args)],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def results(name: str, runs, data) -> dict:
    done = tune(name, "--results", "json", "--runs-dir", runs, "--data", data)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_four_trial_search_completes(tmp_path, monkeypatch, real_data):
    _, data, runs = search_setup(tmp_path, monkeypatch, real_data, {"s": search_file(4)})
    done = tune("s", "--runs-dir", runs, "--data", data)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    trials = trial_runs(runs)
    assert sorted(trials) == [0, 1, 2, 3]
    assert all(meta["search"] == "s" for meta in trials.values())
    found = results("s", runs, data)
    assert found["budget"]["trials_finished"] == 4
    assert found["budget"]["epochs_trained"] == found["budget"]["epochs_full"] == 8
    assert found["best"]["state"] == "complete" and len(found["top"]) == 4
    # the console's API: the same trials, a history with its best so far, importances
    spec, _ = load_search("s")
    view = study_view(runs, spec)
    assert [t.number for t in view.trials] == [0, 1, 2, 3]
    assert {t.run_id for t in view.trials} == {m["run_id"] for m in trials.values()}
    assert len(view.history) == 4
    best = [p.best_so_far for p in view.history]
    assert best == sorted(best) and best[-1] == view.best.value
    assert view.importances is not None and set(view.importances) == {"lr", "gamma"}
    md = tmp_path / "results.md"
    assert tune("s", "--results", "md", "--out", md, "--runs-dir", runs).returncode == 0
    assert f"best: trial {view.best.number} ({view.best.run_id})" in md.read_text()
    assert "budget: 8 epochs trained of 8" in md.read_text()
    table = tune("s", "--results", "csv", "--runs-dir", runs).stdout.splitlines()
    assert table[0].startswith("trial,state,epochs_done,value,best,run_id") and len(table) == 5
    # a rerun has nothing left to do
    again = tune("s", "--runs-dir", runs, "--data", data)
    assert again.returncode == 0 and len(trial_runs(runs)) == 4


def test_pruned_trials_list_and_report_as_pruned(tmp_path, monkeypatch, real_data):
    # val accuracy never reaches 1.01: every trial is pruned after its first epoch
    text = search_file(2, "threshold", "lower = 1.01")
    _, data, runs = search_setup(tmp_path, monkeypatch, real_data, {"p": text}, epochs=3)
    done = tune("p", "--runs-dir", runs, "--data", data)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "status: pruned (pruned by the threshold pruner after epoch 1" in done.stdout
    trials = trial_runs(runs)
    assert sorted(trials) == [0, 1]
    for meta in trials.values():
        summary = json.loads((runs / meta["run_id"] / "summary.json").read_text())
        assert summary["status"] == "pruned" and summary["epochs_done"] == 1
        assert not (runs / meta["run_id"] / "last.pt").exists()  # final: nothing resumes it
    listing = subprocess.run(
        [entry_point(), "runs", "--runs-dir", str(runs)],
        env=subprocess_env(COLUMNS=200),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert listing.stdout.count(" pruned ") == 2, listing.stdout
    found = results("p", runs, data)
    assert [t["state"] for t in found["trials"]] == ["pruned", "pruned"]
    assert found["budget"]["epochs_trained"] == 2 and found["budget"]["epochs_full"] == 6
    resumed = subprocess.run(
        [entry_point(), "run", "--resume", trials[0]["run_id"], "--runs-dir", str(runs)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert resumed.returncode == 2 and "pruned" in resumed.stderr


def test_two_workers_share_one_journal(tmp_path, monkeypatch, real_data):
    _, data, runs = search_setup(tmp_path, monkeypatch, real_data, {"w": search_file(4)}, epochs=1)
    args = ("w", "--runs-dir", runs, "--data", data)
    workers = [spawn_tune(*args) for _ in range(2)]
    outputs = [w.communicate(timeout=TIMEOUT)[0] for w in workers]
    assert [w.returncode for w in workers] in ([0, 0], [0, 3], [3, 0]), outputs
    trained = [o.count("run folder: ") for o in outputs]
    assert all(n >= 1 for n in trained), outputs  # both trained, distinct trials
    assert sum(trained) == 4
    assert sorted(trial_runs(runs)) == [0, 1, 2, 3]
    assert results("w", runs, data)["budget"]["trials_finished"] == 4


def test_a_killed_worker_s_trial_is_resumed_by_a_rerun(tmp_path, monkeypatch, real_data):
    _, data, runs = search_setup(tmp_path, monkeypatch, real_data, {"k": search_file(2)}, epochs=4)
    args = ("k", "--runs-dir", runs, "--data", data)
    worker = spawn_tune(*args)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not _an_epoch_done(runs):
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed = trial_runs(runs)
    assert list(killed) == [0]
    rerun = tune(*args)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr
    assert f"trial 0 (resuming run {killed[0]['run_id']})" in rerun.stdout
    trials = trial_runs(runs)
    assert sorted(trials) == [0, 1] and trials[0]["run_id"] == killed[0]["run_id"]
    found = results("k", runs, data)
    assert [t["state"] for t in found["trials"]] == ["complete", "complete"]
    assert found["budget"]["epochs_trained"] == 8  # the killed trial's epochs counted once


def _an_epoch_done(runs) -> bool:
    for metrics in runs.glob("*/metrics.jsonl"):
        if '"kind": "epoch"' in metrics.read_text():
            return True
    return False


def test_parallel_workers_then_the_best_confirmed_over_seeds(tmp_path, monkeypatch, real_data):
    _, data, runs = search_setup(tmp_path, monkeypatch, real_data, {"c": search_file(2)}, epochs=1)
    args = ("c", "--runs-dir", runs, "--data", data)
    done = tune(*args, "--parallel", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert sorted(trial_runs(runs)) == [0, 1]
    logs = sorted(p.name for p in (runs / ".sweep-logs" / "c").iterdir())
    assert logs == ["worker-1.log", "worker-2.log"]
    best = results("c", runs, data)["best"]
    confirmed = tune(*args, "--confirm", "--seeds", "2")
    assert confirmed.returncode == 0, confirmed.stdout[-3000:] + confirmed.stderr
    assert f"the best trial ({best['number']}) over seeds (42, 0)" in confirmed.stdout
    assert "test_acc: " in confirmed.stdout and "(n=2 of 2)" in confirmed.stdout
    seeded = [p for p in runs.iterdir() if p.name.endswith("c-best-seed0")]
    assert len(seeded) == 1  # seed 42 is the best trial's own run, matched by its config


def test_slurm_writes_an_array_of_workers(tmp_path, monkeypatch, real_data):
    _, data, runs = search_setup(tmp_path, monkeypatch, real_data, {"s": search_file(4)})
    script = tmp_path / "tune.sbatch"
    args = ("s", "--slurm", "--max-running", "3", "--out", script)
    done = tune(*args, "--runs-dir", runs, "--data", data)
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert "#SBATCH --array=1-3%3" in text
    assert " -m tui_trainer tune s --runs-dir " in text and "--member" not in text
    # the head says what a task is: a worker of the study, not a sweep's member
    assert "# tui-trainer tune s: 3 array tasks, each a worker of the study" in text
    assert "members left" not in text
