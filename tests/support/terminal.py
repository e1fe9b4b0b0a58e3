"""The installed `tui-trainer` entry point in a pseudo-terminal of a set size (pexpect), as a
person runs it: what Rich and Textual do on a real terminal only shows there (CliRunner and
pipes never draw a live display).

The entry point is the script beside the Python running the tests (the venv's `bin/`); with
PYTHONPATH on this checkout it runs this checkout's code. The environment is the test's (caches
and runs isolated by tests/conftest.py) with TERM=xterm-256color and no $COLUMNS/$LINES, so the
terminal's size decides unless a test sets them.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pexpect

from tests.support.paths import REPO

ENTRY_POINT = Path(sys.executable).parent / "tui-trainer"
# Fine for a tiny run on a busy 2-core machine; a hang still fails the test.
TIMEOUT = 240
# CSI (colours, cursor moves), OSC (titles, links), and the lone ESC sequences (keypad modes).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_=>]")


def screen_text(raw: str) -> str:
    """What a person reads from a stream of terminal output: escape sequences dropped, carriage
    returns as line breaks (each redraw of a live line then reads as one line)."""
    text = _ANSI.sub("", raw)
    return "\n".join(line.rstrip() for line in re.split(r"\r\n|\r|\n", text))


def has_escapes(raw: str) -> bool:
    return "\x1b" in raw


def terminal_env(**extra: str) -> dict[str, str]:
    """The test's environment for a child on a terminal: this checkout importable, an xterm."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env |= {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "PYTHONUNBUFFERED": "1"}
    return env | extra


def entry_point() -> str:
    assert ENTRY_POINT.is_file(), (
        f"no {ENTRY_POINT}: install the project into the venv that runs the tests "
        "(pip install -e '.[dev]')"
    )
    return str(ENTRY_POINT)


@dataclass
class Finished:
    """A command's end: exit code (128 + N for a signal), and its output, raw and as read."""

    code: int
    raw: str

    @property
    def text(self) -> str:
        return screen_text(self.raw)


class Terminal:
    """One `tui-trainer ARGS` in a pty of `cols` x `rows`; `raw` collects all it wrote."""

    def __init__(
        self, args, cols: int = 100, rows: int = 30, env: dict | None = None, cwd=None
    ) -> None:
        self.log = io.StringIO()
        self.child = pexpect.spawn(
            entry_point(),
            [str(a) for a in args],
            env=env or terminal_env(),
            cwd=str(cwd or REPO),
            dimensions=(rows, cols),
            encoding="utf-8",
            codec_errors="replace",
            timeout=TIMEOUT,
        )
        self.child.logfile_read = self.log

    @property
    def raw(self) -> str:
        return self.log.getvalue()

    @property
    def text(self) -> str:
        return screen_text(self.raw)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> None:
        """Wait for a regex in the output (escape codes and all); fail with what was shown."""
        try:
            self.child.expect(pattern, timeout=timeout)
        except (pexpect.EOF, pexpect.TIMEOUT) as exc:
            self.child.close(force=True)
            kind = type(exc).__name__
            shown = self.text[-4000:]
            raise AssertionError(f"{kind} waiting for {pattern!r}; shown:\n{shown}") from None

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def finish(self, timeout: float = TIMEOUT) -> Finished:
        """Wait for the end; the exit code, 128 + N if a signal N ended it."""
        try:
            self.child.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT:
            self.child.close(force=True)
            shown = self.text[-4000:]
            raise AssertionError(f"still running after {timeout} s; shown:\n{shown}") from None
        self.child.close()
        code = self.child.exitstatus
        if code is None:
            code = 128 + self.child.signalstatus
        return Finished(code, self.raw)


def run_in_terminal(args, cols: int = 100, rows: int = 30, **kwargs) -> Finished:
    return Terminal(args, cols, rows, **kwargs).finish()


def run_piped(args, env: dict | None = None, cwd=None) -> Finished:
    """The same command with stdout and stderr piped (a redirect, `| less`, CI's log)."""
    done = subprocess.run(
        [entry_point(), *map(str, args)],
        env=env or terminal_env(),
        cwd=str(cwd or REPO),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
    )
    return Finished(done.returncode, done.stdout)


def readme_run_command() -> list[str]:
    """The README's first command's `tui-trainer run ...` (after the install's `&& `), as args."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no ```bash block"
    command = block.group(1).strip().split("&& ")[-1]
    words = shlex.split(command)
    assert words[0].endswith("tui-trainer") and words[1] == "run", command
    return words[1:]


def assert_clean(done: Finished, code: int) -> None:
    """The exit code, and no Python traceback anywhere in what was shown."""
    assert "Traceback" not in done.text, done.text[-4000:]
    assert done.code == code, f"exit {done.code}, expected {code}:\n{done.text[-4000:]}"
