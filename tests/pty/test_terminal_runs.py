"""Training commands through the installed entry point in a real pseudo-terminal: the README's
first command, Ctrl-C and --resume, a sweep, lr-find. On a terminal Rich draws a live progress
bar (its ETA) that no pipe or CliRunner ever shows, so these are the tests that see it."""

from __future__ import annotations

import re

import pytest

from tests.support.processes import small_set_options
from tests.support.sweeps import sweep_presets
from tests.support.terminal import Terminal, assert_clean, readme_run_command, run_in_terminal
from tui_trainer.runs.store import list_runs

# Rich's bar on a terminal: "training ━━━ 3/9 epoch 1 loss 0.69 lr 0.05 0:00:04 0:00:08"
PROGRESS_WITH_ETA = re.compile(
    r"training .*\d+/\d+ epoch \d+ loss [\d.]+ .*\d:\d\d:\d\d \d:\d\d:\d\d"
)
EPOCH_LINE = re.compile(r"epoch \d+/\d+  train_loss=[\d.]+ .*val_acc=[\d.]+")
FIRST_STEP = r"\d+/\d+ epoch 1 loss"  # in the raw output: the bar's first drawn step


def assert_trained_on_a_terminal(text: str, epochs: int) -> None:
    assert PROGRESS_WITH_ETA.search(text), text[-3000:]
    assert len(EPOCH_LINE.findall(text)) == epochs, text[-3000:]
    assert "status: completed" in text


@pytest.mark.parametrize("cols", [100, 80])
def test_the_readmes_first_command_trains_with_a_live_bar(cols, real_data, tiny_data, tmp_path):
    # The README's --data ../shared/caltech101 is relative to the checkout: run it from a folder
    # whose ../shared/caltech101 is real Caltech-101 at 100 columns, the tiny image set at 80
    # (the same command; the width is what differs, and a second real run doubles the time).
    data = real_data if cols == 100 else tiny_data
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "caltech101").symlink_to(data)
    runs = tmp_path / "runs"
    args = [*readme_run_command(), "--set", "classes=2", "--set", "epochs=1", "--runs-dir", runs]
    done = run_in_terminal(args, cols=cols, cwd=cwd)
    assert_clean(done, 0)
    assert_trained_on_a_terminal(done.text, epochs=1)
    # nothing drawn past the edge (but the run folder's path, which the terminal wraps whole)
    drawn = [line for line in done.text.splitlines() if not line.startswith("run folder: ")]
    assert max(map(len, drawn)) <= cols, done.text
    (run,) = list_runs(runs)
    assert run.status() == "completed"


def test_ctrl_c_stops_a_run_and_resume_finishes_it(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    common = ["--data", tiny_data, "--runs-dir", runs]
    term = Terminal(["run", "scratch", *common, *small_set_options(epochs=2)])
    term.expect(FIRST_STEP)
    term.child.sendintr()  # the terminal's Ctrl-C: SIGINT to its foreground process group
    stopped = term.finish()
    assert_clean(stopped, 130)
    assert "stopping after the current step" in stopped.text
    assert "status: interrupted" in stopped.text
    (run,) = list_runs(runs)
    assert f"tui-trainer run --resume {run.id}" in stopped.text  # the hint names the run

    resumed = run_in_terminal(["run", "--resume", run.id, *common])
    assert_clean(resumed, 0)
    assert_trained_on_a_terminal(resumed.text, epochs=2)
    assert run.status() == "completed"


def test_a_two_member_sweep_in_a_terminal(tiny_data, tmp_path, monkeypatch):
    sweep_presets(
        tmp_path / "presets",
        monkeypatch,
        {"tiny-two": 'base = "tiny"\n[grid]\nlr = [0.01, 0.02]\n'},
    )
    runs = tmp_path / "runs"
    done = run_in_terminal(["sweep", "tiny-two", "--data", tiny_data, "--runs-dir", runs])
    assert_clean(done, 0)
    assert "sweep tiny-two: 2 members, 2 to run" in done.text
    assert PROGRESS_WITH_ETA.search(done.text), done.text[-3000:]
    assert done.text.count("status: completed") >= 2
    ids = sorted(r.id for r in list_runs(runs))
    assert len(ids) == 2 and all(r in done.text for r in ids)  # the members' table, ids whole


def test_lr_find_in_a_terminal(tiny_data, tmp_path):
    args = ["lr-find", "scratch", "--data", tiny_data, "--runs-dir", tmp_path / "runs"]
    done = run_in_terminal([*args, "--steps", "12", *small_set_options()])
    assert_clean(done, 0)
    assert re.search(r"suggested lr: [\d.e-]+", done.text), done.text[-3000:]
    assert "curve saved to" in done.text
