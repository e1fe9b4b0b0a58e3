"""`tune --dry-run` on an 80-column xterm, through the installed entry point: the shipped
scratch search's space and budget, whole lines, nothing trained, no study created."""

from __future__ import annotations

from tests.support.terminal import assert_clean, run_in_terminal, terminal_env


def test_tune_dry_run_shows_the_space_and_the_budget_at_80_columns(tmp_path):
    runs = tmp_path / "runs"
    args = ["tune", "scratch-search", "--dry-run", "--runs-dir", runs]
    done = run_in_terminal(args, cols=80, rows=30, env=terminal_env())
    assert_clean(done, 0)
    lines = done.text.splitlines()
    for wanted in (
        "search scratch-search: base scratch, 24 trials, max_val_acc",
        "pruner median n_startup_trials=5, n_warmup_steps=5",
        "lr: float log 0.001 .. 0.1",
        "step_size: int 5 .. 25 step 5",
        "gamma: one of 0.1, 0.3, 0.5",
        "budget: at most 24 trials x 30 epochs = 720 epochs",
    ):
        assert any(wanted in line for line in lines), f"{wanted!r} missing:\n{done.text}"
    # the study's path stays whole (copied from here), as run folders' do: the terminal wraps it
    assert max(len(line) for line in lines if not line.startswith("study: ")) <= 80, done.text
    assert not (runs / ".studies").exists()  # a dry run creates no study
