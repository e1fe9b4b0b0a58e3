"""The package as a user installs it: a wheel built from this checkout, installed into a fresh
venv, carries the presets; `python -m tui_trainer` and the `tui-trainer` script are one CLI.

Offline: the wheel builds without build isolation (hatchling comes with the `dev` extra) and
installs with --no-index --no-deps. The venv sees this interpreter's packages (torch & co.)
through a .pth file, so nothing is installed twice; its own copy of tui_trainer comes first.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.support.paths import REPO


def child_env() -> dict[str, str]:
    """No checkout on the path and no presets folder chosen: what a user's shell has. Wide and
    plain, so Rich's tables and help keep every name whole."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TUI_TRAINER_PRESETS")}
    env.pop("FORCE_COLOR", None)
    return env | {"COLUMNS": "200", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}


def run(*args, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A venv holding only the wheel of this checkout (plus a view of this interpreter's
    site-packages); returns the venv's bin folder."""
    pytest.importorskip(
        "hatchling", reason="the wheel build needs hatchling: pip install -e '.[dev]'"
    )
    root = tmp_path_factory.mktemp("packaging")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = ["wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", root, REPO]
    run(*pip, *build, cwd=root)
    (wheel,) = root.glob("tui_trainer-*.whl")
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv, cwd=root)
    python = venv / "bin" / "python"
    run(*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel, cwd=root)
    # this interpreter's packages, after the venv's own: plain paths, so an editable install's
    # .pth (which would put the checkout on the path) is not run
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=root)
    libs = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    parents = dict.fromkeys([*libs, *site.getsitepackages()])
    Path(purelib.strip(), "_test_parent_site.pth").write_text("\n".join(parents) + "\n")
    return venv / "bin"


def repo_presets() -> set[str]:
    """The presets among presets/*.toml: a file with a `base` is a sweep, `_*` is private."""
    return {
        path.stem
        for path in (REPO / "presets").glob("*.toml")
        if not path.name.startswith("_") and "base" not in tomllib.loads(path.read_text())
    }


def help_commands(text: str) -> list[str]:
    """The command names in the `Commands` box of Typer's --help."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Commands" in line)
    names = []
    for line in lines[start + 1 :]:
        if not line.startswith("│"):
            break
        names.append(line.strip("│ ").split()[0])
    return names


def test_the_wheel_carries_the_presets(wheel_venv, tmp_path):
    where = run(
        wheel_venv / "python",
        "-c",
        "import tui_trainer.config as c; print(c.__file__); print(c.presets_dir())",
        cwd=tmp_path,
    ).split()
    venv = wheel_venv.parent
    assert all(Path(p).is_relative_to(venv) for p in where), where  # the wheel's, not ./presets

    listed = run(wheel_venv / "tui-trainer", "presets", cwd=tmp_path)

    first_cells = {line.split()[0] for line in listed.splitlines() if line.strip()}
    expected = repo_presets()
    assert {"scratch", "finetune", "freeze-conv"} <= expected
    assert expected <= first_cells, f"missing {sorted(expected - first_cells)}:\n{listed}"


def test_module_and_script_are_the_same_cli(tmp_path):
    """This interpreter's install (the wheel's script is run by the presets test above)."""
    script = Path(sys.executable).parent / "tui-trainer"
    if not script.is_file():
        pytest.skip(f"no tui-trainer script beside {sys.executable}")
    commands = {
        "module": [sys.executable, "-m", "tui_trainer", "--help"],
        "script": [str(script), "--help"],
    }
    # both at once: each imports torch, which takes seconds on a busy machine
    children = {
        name: subprocess.Popen(
            args, cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for name, args in commands.items()
    }
    out = {}
    for name, child in children.items():
        text, _ = child.communicate(timeout=120)
        out[name] = text.decode()
        assert child.returncode == 0, f"{commands[name]}: exit {child.returncode}\n{out[name]}"

    assert "Usage: python -m tui_trainer" in out["module"]
    assert "Usage: tui-trainer" in out["script"]
    listed = help_commands(out["script"])
    assert {"presets", "run", "tui"} <= set(listed), out["script"]
    assert help_commands(out["module"]) == listed
