"""The console (`tui-trainer` with no command) in a real 100x30 pseudo-terminal, through the
installed entry point and Textual's real driver: open it, start a tiny run in the console,
see it train in Watch, stop it, quit. Exit 0, no traceback, the run left interrupted."""

from __future__ import annotations

from tests.support.sweeps import TINY_PRESET, sweep_presets
from tests.support.terminal import Terminal, assert_clean
from tui_trainer.runs.store import list_runs

# The keys the key bar shows today, in one place: the console's bindings may change.
KEYS = {
    "start": "\x13",  # ctrl+s on the Launch form
    "in this console": "\r",  # the start dialog's first row, focused the first time
    "stop": "s",  # Watch
    "yes": "y",  # the confirmation
    "quit": "q",
}


def test_open_the_console_start_a_run_stop_it_and_quit(tiny_data, tmp_path, monkeypatch):
    # the only preset: a tiny run long enough to be stopped (the Launch form shows it first)
    long_tiny = TINY_PRESET.replace("epochs = 1", "epochs = 50")
    presets = sweep_presets(tmp_path / "presets", monkeypatch, {})
    (presets / "tiny.toml").write_text(long_tiny)
    runs = tmp_path / "runs"
    term = Terminal(["--runs-dir", runs, "--data", tiny_data], cols=100, rows=30)
    term.expect("Presets")
    term.expect(f"data: {tiny_data}")  # the data check is done: Start is ready
    term.send(KEYS["start"])
    term.expect("In this console")
    term.send(KEYS["in this console"])
    term.expect("Watch")  # the console switches to the run's view
    term.expect(r"epoch 1/50")
    term.expect(r"step [1-9]")  # it trains
    term.send(KEYS["stop"])
    term.expect("ends as interrupted")
    term.send(KEYS["yes"])
    term.expect("ended interrupted")  # the run's line in Watch once its thread is done
    (run,) = list_runs(runs)
    term.send(KEYS["quit"])
    done = term.finish(timeout=60)
    assert_clean(done, 0)
    assert run.status() == "interrupted"
    assert run.summary()["epochs_done"] < 50
