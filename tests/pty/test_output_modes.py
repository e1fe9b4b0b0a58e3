"""Every command that prints, on an xterm, on a plain terminal (TERM=dumb, NO_COLOR=1,
COLUMNS=60) and piped: exit 0, no traceback, no Rich markup leaking as text, no escape codes
where colour was refused, no cell cut to `…` (run ids stay whole, to be copied into `show`),
and nothing wider than the 60 columns asked for."""

from __future__ import annotations

import re

import pytest

from tests.support.processes import small_set_options
from tests.support.terminal import (
    assert_clean,
    has_escapes,
    run_in_terminal,
    run_piped,
    terminal_env,
)
from tests.support.tui import FIXTURE_IDS, make_fixture_runs
from tui_trainer.runs.store import list_runs

MARKUP = re.compile(r"\[/?(?:bold|dim|italic|red|green|yellow|cyan|blue|magenta)?\]")
PLAIN = {"TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "60"}
# (command, what a reader must find in it)
COMMANDS = {
    "runs": (["runs"], FIXTURE_IDS),
    "show": (["show", FIXTURE_IDS[0]], [FIXTURE_IDS[0], "status: completed", "test_acc: 0.4120"]),
    "report": (["report"], ["Table 1", "TEST_ACC"]),
    "sweeps": (["sweeps"], ["scratch-lr-sweep", "report-study"]),
    "presets": (["presets"], ["scratch", "resnet50-freeze", "Transfer learning"]),
    "help": (["--help"], ["Usage: tui-trainer", "lr-find", "sweeps"]),
    "sweep-dry-run": (
        ["sweep", "scratch-lr-sweep", "--dry-run"],
        ["6 members, 6 to run", "scratch-lr0.001-e30-s20-g0.1", "pending", "disk: about"],
    ),
}


def run_mode(mode: str, args: list, cwd=None):
    if mode == "piped":
        return run_piped(args, cwd=cwd)
    env = terminal_env(**(PLAIN if mode == "plain-terminal" else {}))
    return run_in_terminal(args, cols=100, rows=30, env=env, cwd=cwd)


def assert_readable(done, mode: str, wanted) -> None:
    assert_clean(done, 0)
    text = done.text
    assert not MARKUP.search(text), MARKUP.search(text)
    assert "…" not in text, text  # a cell cut short
    for part in wanted:
        assert part in text, f"{part!r} missing:\n{text}"
    if mode != "xterm":
        assert not has_escapes(done.raw), repr(done.raw[:2000])


# Each command in the modes where it could go wrong; every spawn costs seconds of startup.
CASES = [
    *((c, "xterm") for c in ("runs", "show", "report", "sweeps", "help")),
    *((c, "plain-terminal") for c in COMMANDS),
    *((c, "piped") for c in ("runs", "show", "presets", "sweep-dry-run")),
]
# Markdown keeps a table row on one line, for a file or a pager; the terminal wraps it.
UNWRAPPED = ("report", "help")  # help: Rich sizes any TERM=dumb console at 80 columns


@pytest.mark.parametrize(("command", "mode"), CASES)
def test_every_command_reads_plainly(command, mode, tmp_path):
    runs = tmp_path / "runs"
    make_fixture_runs(runs)
    args, wanted = COMMANDS[command]
    needs_runs = command in ("runs", "show", "report", "sweep-dry-run")
    done = run_mode(mode, [*args, *(["--runs-dir", runs] if needs_runs else [])])
    assert_readable(done, mode, wanted)
    if mode == "plain-terminal" and command not in UNWRAPPED:
        too_wide = [line for line in done.text.splitlines() if len(line) > 60]
        assert not too_wide, "\n".join(too_wide)


def test_help_fits_60_columns_on_an_xterm():
    done = run_in_terminal(["--help"], env=terminal_env(COLUMNS="60"))
    assert_clean(done, 0)
    assert max(len(line) for line in done.text.splitlines()) <= 60, done.text


def test_a_useless_columns_value_still_prints_every_run_whole(tmp_path):
    runs = tmp_path / "runs"
    make_fixture_runs(runs)
    for done in (
        run_in_terminal(["runs", "--runs-dir", runs], env=terminal_env(COLUMNS="0")),
        run_piped(["runs", "--runs-dir", runs], env=terminal_env(COLUMNS="wide")),
    ):
        assert_readable(done, "xterm", FIXTURE_IDS)


@pytest.mark.parametrize("mode", ["plain-terminal", "piped"])
def test_a_run_without_a_live_display_prints_plain_epoch_lines(mode, tiny_data, tmp_path):
    runs = tmp_path / "runs"
    args = ["run", "scratch", "--data", tiny_data, "--runs-dir", runs]
    done = run_mode(mode, [*args, *small_set_options(epochs=2)])
    (run,) = list_runs(runs)
    assert_readable(done, mode, [f"run {run.id}: ", "status: completed", str(run.path)])
    assert len(re.findall(r"^epoch \d/2  train_loss=", done.text, re.M)) == 2, done.text
    assert "training" not in done.text  # no progress bar: it would redraw itself line by line
