"""The console's first hour, in a real terminal (a pty at 100x30, xterm-256color), as a person
meets it: launch -> edit the form -> switch preset and back (the edits stay) -> start (the dialog
shows the edits) -> stop -> resume from the console -> the Runs table shows the run completed.

Real training on real Caltech-101 (2 classes, 64 px, 2 epochs): the run stops after its first
epoch and the resume trains the second in the same folder. Screens are read from the terminal's
output with the escape sequences removed: Textual writes a changed piece of text whole, so a
word that appears after a key press is found as it is drawn.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pexpect
import pytest

from tests.support.paths import REPO

TUI = REPO / ".venv" / "bin" / "tui-trainer"
# CSI sequences, OSC strings, charset selections, any other two-byte escape
ESCAPES = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()]\w|.)")
# (Tabs from the field before, what to type), from the LR field: epochs, batch, classes, image
# size, resize (the form's order: lr epochs step gamma batch classes image_size resize)
EDITS = ((1, "2"), (3, "32"), (1, "2"), (1, "64"), (1, "72"))


class Terminal:
    """A console in a pty: keys in, the text it draws out (escapes stripped), waited on."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child, self.text, self.mark = child, "", 0

    def read(self, seconds: float) -> None:
        try:
            chunk = self.child.read_nonblocking(1 << 16, timeout=seconds)
        except pexpect.TIMEOUT:
            return
        self.text += ESCAPES.sub("", chunk)

    def wait(self, *words: str, timeout: float = 60.0) -> str:
        """Until every word has been drawn since the last key sent; the text drawn so far."""
        deadline = time.monotonic() + timeout
        while not all(w in self.text[self.mark :] for w in words):
            if time.monotonic() > deadline:
                tail = self.text[self.mark :][-1500:]
                raise AssertionError(f"never drawn: {words}; the terminal showed: {tail!r}")
            self.read(0.3)
        return self.text[self.mark :]

    def wait_re(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """Until `pattern` matches what was drawn since the last key sent."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.text[self.mark :])) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"never drawn: {pattern!r}: {self.text[-1500:]!r}")
            self.read(0.3)
        return found

    def press(self, *keys: str, pause: float = 0.5) -> None:
        """Send each key, then take what the console draws for `pause` seconds: a key sent
        while it is busy drawing the last one's effect may be read with it as one sequence."""
        self.mark = len(self.text)
        for key in keys:
            self.child.send(key)
            end = time.monotonic() + pause
            while time.monotonic() < end:
                self.read(0.1)


@pytest.fixture
def caltech() -> Path:
    path = Path(os.environ.get("TUI_TRAINER_DATA", REPO.parent / "shared" / "caltech101"))
    if not (path / "101_ObjectCategories").is_dir():
        pytest.skip("real Caltech-101 not found: set TUI_TRAINER_DATA")
    return path


@pytest.fixture
def journey_console(caltech, tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(REPO)}
    child = pexpect.spawn(
        str(TUI),
        ["--runs-dir", str(runs), "--data", str(caltech), "--device", "cpu"],
        env=env,
        dimensions=(30, 100),
        encoding="utf-8",
        codec_errors="replace",
    )
    yield Terminal(child), runs
    if child.isalive():  # a test that failed midway: quit, or end it
        child.sendcontrol("q")
        child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=20)
    child.close(force=True)


TAB, SHIFT_TAB, ENTER, DOWN, UP = "\t", "\x1b[Z", "\r", "\x1b[B", "\x1b[A"
CTRL_S = "\x13"


def test_edit_switch_start_stop_resume_completed(journey_console, caltech):
    term, runs = journey_console
    term.wait("Presets", "scratch", "ctrl+s", timeout=90)
    # the data check done (its line without "checking"): the console takes keys from here on
    term.wait_re(re.escape(f"data: {caltech}") + r" *\r\n", timeout=120)
    term.press(ENTER)  # the preset picked: on to its LR field, then the next one
    term.press(TAB, "2", pause=1.0)
    term.wait("edited, ctrl+r resets: epochs=2")
    for tabs, value in EDITS[1:]:  # one key at a time: a busy machine draws slowly
        term.press(*[TAB] * tabs, value, pause=1.0)
    term.wait("scratch *")  # marked edited in the list
    # back to the preset list (shift+tab through the fields: a lone escape can merge with the
    # next key's sequence on a busy machine), to the next preset and back
    term.press(*[SHIFT_TAB] * 8)
    term.press(DOWN)
    term.wait("finetune")  # the next preset, with its own values
    term.press(UP)
    shown = term.wait("edited, ctrl+r resets: epochs=2 batch_size=32")
    assert "Reset form" in shown  # the key bar

    term.press(CTRL_S)  # the dialog says what is about to train
    shown = term.wait("changed from the preset", "In this console")
    changes = "epochs=2 batch_size=32 classes=2 image_size=64 resize=72"
    assert changes.split() == re.findall(r"\w+=\d+", shown.split("changed from the preset")[1])[:5]
    assert "2 classes, 64 px, 2 epochs, batch 32" in shown
    term.press(ENTER)
    term.wait("epoch 1/2 train_acc", timeout=400)  # one epoch done: last.pt to resume from

    term.press("s")  # stop, after a yes
    term.wait("Stop")
    term.press("y")
    term.wait("ended interrupted", "r Resume", timeout=120)  # its log line; the key bar
    [run] = [p for p in runs.iterdir() if not p.name.startswith(".")]
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"

    term.press("r")  # resume, in this console
    term.wait("Resume", "interrupted after 1 of 2 epochs")
    term.press(ENTER)
    term.wait("ended completed", timeout=400)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumes"] == 1

    term.press("3", "/", "completed", ENTER)  # the Runs table, filtered by the status
    term.wait(run.name, "1 runs")  # "0 of 1 runs" were it not completed
