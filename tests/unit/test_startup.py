"""A fast start: the commands that train nothing, and the console's first screen, never import
torch or torchvision (seconds on a small machine). Each check runs in a fresh interpreter and
reads its sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.processes import subprocess_env
from tests.support.tui import FIXTURE_IDS, make_fixture_runs

TRAINING_MODULES = ("torch", "torchvision", "optuna")

# Each command through the app's Typer object, in one interpreter; after each, what it loaded.
COMMANDS_CHILD = """
import json, sys
from typer.testing import CliRunner
import tui_trainer.cli.app as cli

heavy = {heavy!r}
seen = {{"import tui_trainer.cli.app": [0, [m for m in heavy if m in sys.modules], ""]}}
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(cli.app, args)
    loaded = [m for m in heavy if m in sys.modules]
    seen[" ".join(args)] = [result.exit_code, loaded, result.output[-400:]]
print(json.dumps(seen))
"""

# The console as `tui-trainer` opens it (the CLI's modules imported first), headless, until its
# first screen is up and the data check has run; then the Runs and Studies views.
CONSOLE_CHILD = """
import asyncio, json, sys
import tui_trainer.cli.app
from tui_trainer.tui.app import make_app

heavy = {heavy!r}

async def main():
    app = make_app(data_dir=sys.argv[1], runs_dir=sys.argv[2])
    seen = {{}}
    async with app.run_test(size=(100, 30)) as pilot:
        seen["first screen"] = [type(app.screen).__name__, [m for m in heavy if m in sys.modules]]
        for _ in range(600):
            if app.data_checked:
                break
            await pilot.pause(0.05)
        seen["data checked"] = [app.data_checked, [m for m in heavy if m in sys.modules]]
        for key, view in (("3", "runs"), ("4", "studies")):
            await pilot.press(key)
            await pilot.pause(0.3)
            seen[view] = [app.main.current, [m for m in heavy if m in sys.modules]]
    print(json.dumps(seen))

asyncio.run(main())
"""


def _child(source: str, *args) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", source.format(heavy=TRAINING_MODULES), *map(str, args)],
        env=subprocess_env(COLUMNS=100),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_commands_that_train_nothing_import_no_torch(tmp_path, tiny_data):
    runs_dir, empty = tmp_path / "runs", tmp_path / "empty"
    make_fixture_runs(runs_dir)
    empty.mkdir()
    commands = [
        ["--help"],
        ["presets"],
        ["runs", "--runs-dir", str(empty)],
        ["runs", "--runs-dir", str(runs_dir)],
        ["show", FIXTURE_IDS[0], "--runs-dir", str(runs_dir)],
        ["report", "--runs-dir", str(runs_dir)],
        ["sweeps"],
        ["sweep", "scratch-lr-sweep", "--dry-run", "--runs-dir", str(runs_dir)],
        ["tune", "--help"],
        ["tune", "scratch-search", "--dry-run", "--runs-dir", str(runs_dir)],
        ["data", "check", "--data", str(tiny_data)],
    ]
    seen = _child(COMMANDS_CHILD, json.dumps(commands))
    for command, (code, loaded, output) in seen.items():
        # data check exits 1: the tiny set holds one corrupt image on purpose
        assert code == (1 if command.startswith("data") else 0), f"{command}: {code}\n{output}"
        assert loaded == [], f"{command} imported {loaded}"
    assert len(seen) == len(commands) + 1


def test_the_console_s_first_screen_imports_no_torch(tmp_path, tiny_data):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    seen = _child(CONSOLE_CHILD, tiny_data, runs_dir)
    assert seen["first screen"] == ["MainScreen", []]
    assert seen["data checked"] == [True, []]
    assert seen["runs"] == ["runs", []] and seen["studies"] == ["studies", []]
