"""The console's terminal closes while it trains (a dropped SSH connection): the run stops cleanly.

The console runs in a real pseudo-terminal, as its session's leader with the terminal as its
controlling one (`pty.fork`). Closing the terminal's master side is what sshd does when the
connection drops: the kernel hangs the terminal up and sends SIGHUP; from then on the console's
writes fail and its reads end. It must stop its run as `interrupted` (checkpoint of the last
finished epoch, the reason in summary.json) and exit 129, neither crashing first nor hanging.
SIGTERM is the same stop with the terminal still there.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import threading
import time

import pytest
from textual.app import App
from textual.drivers._writer_thread import WriterThread

from tests.support.paths import REPO
from tests.support.processes import leftovers, subprocess_env
from tui_trainer.runs.store import Run, list_runs
from tui_trainer.tui.hangup import HangupSafeDriver

DRIVER = REPO / "tests" / "reliability" / "console_driver.py"
WAIT_S = 600  # a bound on a hang, not a speed check: the machine may be busy


def open_console(data, runs_dir, epochs: int) -> tuple[int, int]:
    """(pid, master fd) of the console in a new 80x24 pseudo-terminal."""
    pid, master = pty.fork()
    if pid == 0:  # the child: the console, nothing else (exec at once: the parent has threads)
        env = subprocess_env(TERM="xterm-256color", COLUMNS="80", LINES="24")
        args = [sys.executable, str(DRIVER), str(data), str(runs_dir), "in-console", str(epochs)]
        os.chdir(REPO)
        os.execve(sys.executable, args, env)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return pid, master


def drain(master: int, stop: threading.Event) -> None:
    """Read what the console draws, as a terminal would (a full pty would block its writes)."""
    while not stop.is_set():
        try:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready and not os.read(master, 65536):
                return
        except OSError:
            return


def wait_for_steps(runs_dir, pid: int) -> Run:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for run in list_runs(runs_dir):
            if run.steps():
                return run
        done, _ = os.waitpid(pid, os.WNOHANG)
        assert done == 0, "the console ended before its run trained"
        time.sleep(0.2)
    raise AssertionError("no step of the run on disk")


def wait_exit(pid: int) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the console did not exit after its terminal closed (it hung)")


@pytest.mark.parametrize("how", ["hangup", "sigterm"])
def test_the_console_stops_its_run_cleanly_when_its_terminal_closes(how, tiny_data, tmp_path):
    runs_dir = tmp_path / "runs"
    pid, master = open_console(tiny_data, runs_dir, epochs=50)
    stop_draining = threading.Event()
    reader = threading.Thread(target=drain, args=(master, stop_draining), daemon=True)
    reader.start()
    try:
        run = wait_for_steps(runs_dir, pid)
        # an epoch done: last.pt is there to keep
        deadline = time.monotonic() + WAIT_S
        while not run.epochs() and time.monotonic() < deadline:
            time.sleep(0.2)
        if how == "hangup":
            stop_draining.set()
            reader.join()
            os.close(master)  # the terminal goes away: the kernel sends SIGHUP
            master = -1
        else:
            os.kill(pid, signal.SIGTERM)
        code = wait_exit(pid)
    finally:
        stop_draining.set()
        if master >= 0:
            reader.join()
            os.close(master)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    signum = signal.SIGHUP if how == "hangup" else signal.SIGTERM
    assert code == 128 + signum
    summary = run.summary()
    assert Run(run.path).status() == "interrupted" and summary["status"] == "interrupted"
    assert summary["stopped"].startswith(signal.Signals(signum).name + ": ")
    assert summary["message"].startswith("stopped during epoch")
    assert 1 <= summary["epochs_done"] < 50
    assert run.last_path.is_file()
    assert not run.owner_path.exists() and not leftovers(run.path)


class HungUpTerminal:
    """A terminal file after the hangup: every write fails with EIO."""

    def write(self, text: str) -> int:
        raise OSError(errno.EIO, "Input/output error")

    def flush(self) -> None:
        raise OSError(errno.EIO, "Input/output error")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_writes_after_the_writer_thread_died_on_a_hung_up_terminal_are_dropped():
    """Between the hangup and the handler the writer thread may die on EIO; the screen's next
    writes must not fill its bounded queue (the event loop would block there for good)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTSTP, signal.SIGCONT)}

    async def make_driver():  # a driver belongs to an event loop; writing needs none
        return HangupSafeDriver(App(), size=(80, 24))  # (it installs SIGTSTP/SIGCONT handlers)

    try:
        driver = asyncio.run(make_driver())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    driver._writer_thread = WriterThread(HungUpTerminal())
    driver._writer_thread.start()
    driver.write("the first frame after the hangup")
    driver._writer_thread.join(WAIT_S)  # it dies on EIO (and says so on stderr)
    assert not driver._writer_thread.is_alive()
    done = threading.Event()

    def redraw_a_while() -> None:
        for _ in range(1000):  # far more than the writer's queue holds
            driver.write("frame")
        driver.flush()
        driver.close()
        done.set()

    threading.Thread(target=redraw_a_while, daemon=True).start()
    assert done.wait(WAIT_S), "a write blocked on the dead writer's full queue"
