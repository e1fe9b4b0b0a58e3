"""The study commands through CliRunner: sweep (and resuming it), report, preview, show."""

import json
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from tests.support.paths import REPO
from tests.support.processes import spawn_cli, subprocess_env
from tests.support.runs import fake_run, invoke
from tui_trainer.runs.store import list_runs
from tui_trainer.studies import members, parallel, sweep_file, sweeps
from tui_trainer.studies.parallel import ChildOptions
from tui_trainer.studies.slots import Slot
from tui_trainer.train import engine

TINY_PRESET = """\
model = "resnet18"
image_size = 32
resize = 36
batch_size = 8
epochs = 2
lr = 0.01
step_size = 1
precision = "fp32"
device = "cpu"
threads = 2
"""
TINY_SWEEP = 'base = "tiny"\n[grid]\nlr = [0.01, 0.02]\n'


@pytest.fixture
def presets(tmp_path, monkeypatch):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_PRESET)
    (folder / "tiny-sweep.toml").write_text(TINY_SWEEP)
    monkeypatch.setenv("TUI_TRAINER_PRESETS", str(folder))
    return folder


def fail_when(monkeypatch, lr: float, error: Exception):
    """Make the member with this lr break in its first epoch."""
    real = engine.train_one_epoch

    def patched(loop, cfg, *rest):
        if cfg.lr == lr:
            raise error
        return real(loop, cfg, *rest)

    monkeypatch.setattr(engine, "train_one_epoch", patched)


def test_a_sweep_resumes_after_a_failed_member(presets, tiny_data, tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    args = ["sweep", "tiny-sweep", "--data", tiny_data, "--runs-dir", runs_dir, "--set", "epochs=1"]
    with monkeypatch.context() as patch:
        fail_when(patch, 0.01, RuntimeError("disk on fire"))
        first = invoke(*args)
    # the failed member does not stop the sweep; the exit code says one failed
    assert first.exit_code == 1, first.output
    assert "2 members, 2 to run" in first.output and "disk on fire" in first.output
    sweep = sweep_file.load_sweep("tiny-sweep", {"epochs": "1"})
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["failed", "completed"]
    done = states[1].run.id
    meta = states[1].run.meta()
    assert meta["sweep"] == "tiny-sweep" and meta["sweep_member"] == "tiny-lr=0.02-epochs=1"
    assert meta["config"]["epochs"] == 1 and meta["overrides"] == {"lr": "0.02", "epochs": "1"}

    second = invoke(*args)  # only the failed member runs again
    assert second.exit_code == 0, second.output
    assert (
        "2 members, 1 to run" in second.output
        and "tiny-sweep 1/1: tiny-lr=0.01-epochs=1" in second.output
    )
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["completed", "completed"] and states[1].run.id == done
    assert len(list_runs(runs_dir)) == 3

    third = invoke(*args)
    assert third.exit_code == 0 and "2 members, 0 to run" in third.output
    assert len(list_runs(runs_dir)) == 3


def test_an_interrupted_member_stops_the_sweep_with_130(presets, tiny_data, tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    fail_when(monkeypatch, 0.01, engine.Stopped())
    result = invoke("sweep", "tiny-sweep", "--data", tiny_data, "--runs-dir", runs_dir)
    assert result.exit_code == 130, result.output
    assert "continue the sweep with `tui-trainer sweep tiny-sweep`" in result.output
    (run,) = list_runs(runs_dir)
    assert run.status() == "interrupted"
    dry = invoke("sweep", "tiny-sweep", "--runs-dir", runs_dir, "--dry-run")
    assert dry.exit_code == 0
    assert dry.output.startswith("sweep tiny-sweep: 2 members, 2 to run\n")
    assert [line.split()[3] for line in dry.output.splitlines()[3:-1]] == ["interrupted", "pending"]


def kill_in_the_second_runs_first_epoch(args, runs_dir) -> None:
    """Start `tui-trainer *args` and SIGKILL it once the second run folder has a step row."""
    proc = spawn_cli(*args)
    try:
        deadline = time.monotonic() + 300
        while not (len(list_runs(runs_dir)) == 2 and list_runs(runs_dir)[1].steps()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()


def test_a_sweep_killed_mid_member_continues_where_it_stopped(presets, tiny_data, tmp_path):
    """SIGKILL during the second of three members; the rerun skips the first, runs the
    second again (its killed run stays, as crashed) and the third."""
    (presets / "tiny-three.toml").write_text('base = "tiny"\n[grid]\nlr = [0.01, 0.02, 0.03]\n')
    runs_dir = tmp_path / "runs"
    args = ["sweep", "tiny-three", "--data", tiny_data, "--runs-dir", runs_dir, "--set", "epochs=1"]
    args += ["--set", "threads=1"]  # two processes' OpenMP threads would spin on a busy box
    kill_in_the_second_runs_first_epoch(args, runs_dir)
    first, killed = list_runs(runs_dir)
    assert first.status() == "completed" and killed.status() == "crashed"

    rerun = invoke(*args)
    assert rerun.exit_code == 0, rerun.output
    assert "3 members, 2 to run" in rerun.output
    assert "tiny-three 1/2: tiny-lr=0.02-epochs=1" in rerun.output
    sweep = sweep_file.load_sweep("tiny-three", {"epochs": "1", "threads": "1"})
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["completed"] * 3
    assert states[0].run.id == first.id and states[1].run.id != killed.id
    assert len(list_runs(runs_dir)) == 4 and killed.status() == "crashed"


def test_a_sweep_over_seeds_killed_mid_member_skips_the_finished_seeds(
    presets, tiny_data, tmp_path
):
    """--seeds 3 on a one-member sweep: SIGKILL during the second seed; the rerun skips seed 42
    and runs seeds 0 and 1."""
    (presets / "tiny-one.toml").write_text('base = "tiny"\n[[runs]]\nname = "one"\n')
    runs_dir = tmp_path / "runs"
    args = ["sweep", "tiny-one", "--seeds", 3, "--data", tiny_data, "--runs-dir", runs_dir]
    args += ["--set", "epochs=1", "--set", "threads=1"]
    kill_in_the_second_runs_first_epoch(args, runs_dir)  # seed 0's
    first, killed = list_runs(runs_dir)
    assert first.config()["seed"] == 42 and first.meta()["sweep_member"] == "one-epochs=1"
    assert killed.config()["seed"] == 0 and killed.status() == "crashed"

    rerun = invoke(*args)
    assert rerun.exit_code == 0, rerun.output
    assert "3 members, 2 to run" in rerun.output and "seeds: 42, 0, 1" in rerun.output
    assert "tiny-one 1/2: one-epochs=1-seed0" in rerun.output
    assert "tiny-one 2/2: one-epochs=1-seed1" in rerun.output
    sweep = sweep_file.load_sweep("tiny-one", {"epochs": "1", "threads": "1"}, seeds=(42, 0, 1))
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["completed"] * 3 and states[0].run.id == first.id
    again = invoke(*args, "--dry-run")
    assert "3 members, 0 to run" in again.output
    assert again.output.splitlines()[-1] == "disk: nothing left to run"


def test_a_member_failed_elsewhere_during_the_sweep_is_not_retried_by_it(
    presets, tiny_data, tmp_path, monkeypatch
):
    """While this sweep trains member 1, another process's run of member 2 fails: this sweep
    leaves member 2 alone (exit 1); the next sweep retries it."""
    runs_dir = tmp_path / "runs"
    args = ["sweep", "tiny-sweep", "--data", tiny_data, "--runs-dir", runs_dir, "--set", "epochs=1"]
    sweep = sweep_file.load_sweep("tiny-sweep", {"epochs": "1"})
    real = engine.train_one_epoch

    def meanwhile(loop, cfg, *rest):
        if cfg.lr == 0.01 and not list(runs_dir.glob("*-elsewhere")):
            fake_run(runs_dir, "20240101-000000-elsewhere", "tiny", "failed", {}, lr=0.02, epochs=1)
            summary = runs_dir / "20240101-000000-elsewhere" / "summary.json"
            summary.write_text(json.dumps({"status": "failed", "ended_at": time.time()}))
        return real(loop, cfg, *rest)

    with monkeypatch.context() as patch:
        patch.setattr(engine, "train_one_epoch", meanwhile)
        first = invoke(*args)
    assert first.exit_code == 1, first.output
    assert "tiny-sweep 2/2: tiny-lr=0.02-epochs=1: failed in another process during this sweep" in (
        first.output
    )
    states = sweeps.member_states(sweep, runs_dir)
    assert [s.status for s in states] == ["completed", "failed"]
    second = invoke(*args)
    assert second.exit_code == 0 and "tiny-sweep 1/1: tiny-lr=0.02-epochs=1" in second.output
    assert [s.status for s in sweeps.member_states(sweep, runs_dir)] == ["completed"] * 2


def test_a_parallel_child_treats_a_failure_since_its_parent_started_as_final(
    presets, tiny_data, tmp_path
):
    """A --parallel child starts its member long after the parent started: a failure of that
    member in another process in between is final for the invocation, as for a plain sweep,
    because the child runs with the parent's start (--since), not its own."""
    runs_dir = tmp_path / "runs"
    parent_started = time.time() - 60
    fake_run(runs_dir, "20240101-000000-elsewhere", "tiny", "failed",
             {"ended_at": parent_started + 30}, lr=0.02, epochs=1)  # fmt: skip
    options = ChildOptions(tiny_data, runs_dir, ("epochs=1",), since=parent_started)
    command = parallel.child_command("tiny-sweep", 2, options, Slot(0, None, 1))
    assert command[:4] == [sys.executable, "-m", "tui_trainer", "sweep"]
    child = invoke(*command[3:])  # the child's own command line, parsed as the child does
    assert child.exit_code == 1, child.output
    assert "tiny-lr=0.02-epochs=1: failed in another process during this sweep" in child.output
    assert [r.id for r in list_runs(runs_dir)] == ["20240101-000000-elsewhere"]  # not retried
    # a later invocation (its own start) retries it: the failure came before it
    sweep = sweep_file.load_sweep("tiny-sweep", {"epochs": "1"})
    later = members.claim_member(sweep, sweep.members[1], runs_dir, since=time.time())
    assert isinstance(later, members.Claimed), later
    later.claim.release()


# Takes a member's claim in another process, says so, and waits until its stdin closes.
HOLD_CLAIM = """
import sys
from tui_trainer.runs.claims import take_claim
taken = take_claim(sys.argv[1], sys.argv[2], sweep="tiny-sweep", member="elsewhere")
print(type(taken).__name__, flush=True)
sys.stdin.read()
"""


def test_a_sweep_whose_last_member_trains_elsewhere_exits_3_not_0(presets, tiny_data, tmp_path):
    """Exit 0 says every member completed: while one still trains in another process, this
    sweep has nothing left to do but exits 3 (as --member does); a failure still wins (1)."""
    runs_dir = tmp_path / "runs"
    args = ["sweep", "tiny-sweep", "--data", tiny_data, "--runs-dir", runs_dir, "--set", "epochs=1"]
    sweep = sweep_file.load_sweep("tiny-sweep", {"epochs": "1"})
    fake_run(runs_dir, "20240101-000000-a", "tiny", "completed", {}, lr=0.01, epochs=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIM, str(runs_dir), sweeps.member_key(sweep.members[1])],
        env=subprocess_env(), cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "MemberClaim"
        held = invoke(*args)
        assert held.exit_code == 3, held.output
        assert "2 members, 0 to run" in held.output and "running (pid " in held.output
        assert len(list_runs(runs_dir)) == 1  # nothing trained here
        (runs_dir / "20240101-000000-a" / "summary.json").write_text('{"status": "diverged"}')
        diverged = invoke(*args)
        assert diverged.exit_code == 1, diverged.output  # diverged and training elsewhere
    finally:
        holder.communicate(input="", timeout=60)
    fake_run(runs_dir, "20240101-000000-b", "tiny", "completed", {}, lr=0.02, epochs=1)
    (runs_dir / "20240101-000000-a" / "summary.json").write_text('{"status": "completed"}')
    done = invoke(*args)
    assert done.exit_code == 0 and "2 members, 0 to run" in done.output, done.output


def test_member_k_trains_that_member_alone(presets, tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    args = ["sweep", "tiny-sweep", "--data", tiny_data, "--runs-dir", runs_dir, "--set", "epochs=1"]
    result = invoke(*args, "--member", 2)
    assert result.exit_code == 0, result.output
    assert "tiny-sweep member 2/2: tiny-lr=0.02-epochs=1" in result.output
    (run,) = list_runs(runs_dir)
    assert run.config()["lr"] == 0.02 and run.status() == "completed"
    assert run.meta()["sweep_member"] == "tiny-lr=0.02-epochs=1"
    # the numbering is the full order's, whatever has completed
    dry = invoke(*args, "--dry-run", "--member", 2)
    assert dry.exit_code == 0 and "2 members, 1 to run" in dry.output
    (row,) = [line.split() for line in dry.output.splitlines() if "tiny-lr=" in line]
    assert row[:4] == ["2", "tiny-lr=0.02-epochs=1", "tiny", "completed"] and row[4] == run.id
    again = invoke(*args, "--member", 2)
    assert again.exit_code == 0, again.output
    assert f"tiny-sweep member 2/2: tiny-lr=0.02-epochs=1: completed (run {run.id})" in again.output
    assert len(list_runs(runs_dir)) == 1


def test_member_k_held_by_another_process_exits_3(presets, tiny_data, tmp_path):
    import os

    from tui_trainer.runs.claims import take_claim

    runs_dir = tmp_path / "runs"
    sweep = sweep_file.load_sweep("tiny-sweep", {"epochs": "1"})
    held = take_claim(runs_dir, sweeps.member_key(sweep.members[0]), sweep="x", member="y")
    try:
        args = ["sweep", "tiny-sweep", "--data", tiny_data, "--runs-dir", runs_dir]
        result = invoke(*args, "--set", "epochs=1", "--member", 1)
        dry = invoke(*args, "--set", "epochs=1", "--dry-run")
    finally:
        held.release()
    assert result.exit_code == 3, result.output
    assert f"tiny-lr=0.01-epochs=1: running elsewhere (pid {os.getpid()} on " in result.output
    assert list_runs(runs_dir) == []
    assert "2 members, 1 to run" in dry.output and f"running (pid {os.getpid()} on" in dry.output


def test_shipped_sweeps_list_and_plan():
    listed = invoke("sweeps")
    assert listed.exit_code == 0
    for name in ("scratch-lr-sweep", "finetune-lr-sweep", "report-study"):
        assert name in listed.output
    plan = invoke("sweep", "report-study", "--dry-run", "--set", "classes=5")
    assert plan.exit_code == 0, plan.output
    lines = plan.output.splitlines()
    assert lines[:2] == [
        "sweep report-study: 18 members, 18 to run",
        "(same config, run once: finetune-classes=5 = finetune-lr0.005-e20-s10-g0.1-classes=5)",
    ]
    rows = lines[4:-1]
    assert len(rows) == 18 and "resnet50-freeze" in rows[-1] and "pending" in rows[0]
    assert lines[-1].startswith("disk: about ")


def test_dry_run_names_members_by_the_overrides_that_change_them():
    plan = invoke("sweep", "scratch-lr-sweep", "--dry-run", "--set", "epochs=2")
    assert plan.exit_code == 0, plan.output
    assert "scratch-lr0.05-e30-s20-g0.1-epochs=2" in plan.output
    # the two members that differ only in epochs are one config now: the plan says which
    assert (
        "(same config, run once: scratch-lr0.05-e40-s20-g0.1-epochs=2 = "
        "scratch-lr0.05-e30-s20-g0.1-epochs=2)" in plan.output
    )
    rows = [line for line in plan.output.splitlines() if "pending" in line]
    assert len(rows) == 5 and all("-epochs=2 " in row for row in rows)


def test_a_bad_set_is_blamed_on_set_not_the_sweep_file(tmp_path):
    result = invoke("sweep", "scratch-lr-sweep", "--dry-run", "--set", "epoch=2")
    assert result.exit_code == 2
    assert "--set: unknown config key 'epoch'" in result.output
    assert ".toml" not in result.output and "member" not in result.output


def _disk_gigabytes(output: str) -> tuple[float, float]:
    line = output.splitlines()[-1]
    words = line.split()
    final, peak = (float(w) for w, unit in zip(words, words[1:], strict=False) if unit == "GB")
    return final, peak


def test_dry_run_says_the_disk_the_members_left_will_take():
    args = ("sweep", "scratch-lr-sweep", "--dry-run", "--set", "classes=5")
    light, kept = invoke(*args), invoke(*args, "--set", "keep_last=true")
    assert light.exit_code == 0 and kept.exit_code == 0, light.output + kept.output
    (final, peak), (final_kept, peak_kept) = (
        _disk_gigabytes(light.output),
        _disk_gigabytes(kept.output),
    )
    members = int(light.output.split()[2])
    # AlexNet on 5 classes: best.pt alone is about 0.23 GB, last.pt with momentum twice that
    assert 0.2 * members < final < 0.25 * members
    assert final_kept == pytest.approx(3 * final, rel=0.02)  # + last.pt, which is 2x best.pt
    assert peak == peak_kept and peak > 4 * final / members


def test_report_command_writes_every_format(tmp_path):
    runs = tmp_path / "runs"
    fake_run(
        runs, "20240101-000001-s", "scratch", "completed", {"max_val_acc": 0.4, "test_acc": 0.5}
    )
    md = invoke("report", "--runs-dir", runs)
    assert md.exit_code == 0 and md.output.startswith("# Results")
    assert "| 0.05 | 30 | 20 | 0.1 | 0.400 | 0.500 | 20240101-000001-s |" in md.output
    paper = invoke("report", "--runs-dir", runs, "--compare-paper", "--any-protocol")
    assert (
        "| 0.400 | 0.47 (below) | 0.500 | 0.49 (above) | 20240101-000001-s | full |" in paper.output
    )
    out = tmp_path / "report.json"
    written = invoke("report", "--runs-dir", runs, "--format", "json", "--out", out)
    assert written.exit_code == 0 and written.output == f"report written to {out}\n"
    assert json.loads(out.read_text())["tables"][0]["rows"][3]["cells"]["TEST_ACC"]["value"] == 0.5
    assert invoke("report", "--runs-dir", runs, "--format", "csv").output.startswith("table,row")


def test_report_shows_seeds_as_one_cell_against_the_paper(tmp_path):
    runs = tmp_path / "runs"
    for i, (seed, acc) in enumerate(((42, 0.38), (0, 0.50), (1, 0.44))):
        summary = {"max_val_acc": acc, "test_acc": acc}
        fake_run(runs, f"20240101-00000{i}-s{seed}", "scratch", "completed", summary, seed=seed)
    fake_run(runs, "20240101-000003-s2", "scratch", "failed", {}, seed=2)
    md = invoke("report", "--runs-dir", runs, "--compare-paper")
    assert md.exit_code == 0, md.output
    assert "| 0.440 ± 0.060 (n=3 of 4) | 0.49 (within) |" in md.output
    data = json.loads(
        invoke("report", "--runs-dir", runs, "--format", "json", "--compare-paper").output
    )
    cell = data["tables"][0]["rows"][3]["cells"]["TEST_ACC"]
    assert (cell["vs_paper"], cell["n"], cell["of"]) == ("within", 3, 4)
    assert [r["seed"] for r in cell["runs"]] == [42, 0, 1, 2]


def test_preview_command_writes_the_grid(tmp_path):
    Image.new("L", (120, 90), 128).save(tmp_path / "gray.png")
    result = invoke("preview", tmp_path / "gray.png", "--out", tmp_path / "grid.png", "--seed", 1)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size == (448, 484) and grid.mode == "RGB"


@pytest.mark.parametrize(
    "args, message",
    [
        (["sweep", "nope"], "unknown sweep 'nope': choose one of"),
        (["sweep", "scratch"], "scratch is a preset, not a sweep"),
        (["sweep", "scratch-lr-sweep", "--set", "bogus=1"], "unknown config key 'bogus'"),
        (["sweep", "scratch-lr-sweep", "--set", "lr"], "is not key=value"),
        (["sweep", "scratch-seeds", "--seeds", "0"], "--seeds 0: give at least 1"),
        (["sweep", "scratch-seeds", "--set", "seed=3"], "sets seed itself"),
        (["sweep", "scratch-lr-sweep", "--data", "{tmp}/missing"], "does not exist"),
        (["sweep", "scratch-lr-sweep", "--member", "7"], "--member 7: sweep scratch-lr-sweep has"),
        (["sweep", "scratch-lr-sweep", "--member", "0"], "has members 1 to 6 (see `tui-trainer"),
        (["sweep", "scratch-lr-sweep", "--member", "0", "--dry-run"], "--member 0: sweep"),
        (["run", "report-study"], "report-study is a sweep, not a preset"),
        (["report", "--format", "xml"], "--format 'xml' is not known"),
        (["report", "--out", "{tmp}/no/dir/r.md"], "cannot write"),
        (["preview", "{tmp}/missing.jpg", "--out", "{tmp}/x.png"], "does not exist"),
        (["show", "20240101-000001-s", "--misclassified"], "has no test_results.json"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_runs_nothing(args, message, tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "20240101-000001-s", "scratch", "completed", {"test_acc": 0.5})
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = invoke(*args, *([] if args[0] == "preview" else ["--runs-dir", runs]))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert [r.id for r in list_runs(runs)] == ["20240101-000001-s"]
    assert sorted(p.name for p in runs.iterdir()) == ["20240101-000001-s"]  # no claim either


def test_report_on_a_missing_runs_folder_is_bad_input(tmp_path):
    result = invoke("report", "--runs-dir", tmp_path / "nowhere")
    assert result.exit_code == 2 and "runs folder" in result.output


def ctrl_c_twice(*args, **kwargs):
    """A launch that gets Ctrl-C twice while it trains: the installed handler is called twice."""
    handler = signal.getsignal(signal.SIGINT)
    handler(signal.SIGINT, None)  # the first one asks for a clean stop
    handler(signal.SIGINT, None)  # the second one aborts
    raise AssertionError("the second Ctrl-C did not abort")


@pytest.mark.parametrize(
    ("command", "hint"),
    [
        (["run", "tiny"], "continue the run with `tui-trainer run --resume RUN_ID`"),
        (["sweep", "tiny-sweep"], "continue the sweep with `tui-trainer sweep tiny-sweep`"),
    ],
    ids=["run", "sweep"],
)
def test_a_second_ctrl_c_aborts_with_130_and_restores_the_handlers(
    command, hint, presets, tiny_data, tmp_path, monkeypatch
):
    from tui_trainer.runs import launch

    monkeypatch.setattr(launch, "start_run", ctrl_c_twice)
    monkeypatch.setattr(sweeps, "run_member", ctrl_c_twice)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    result = invoke(*command, "--data", tiny_data, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 130, result.output
    assert "Ctrl-C again to abort" in result.output and f"aborted: {hint}" in result.output
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
