"""tui_trainer.signals: handlers installed for a block, the previous ones back after it."""

import signal
import threading

import pytest

from tui_trainer.signals import STOP_SIGNALS, handling, install


def _on(signum, frame):
    pass


def test_handling_installs_then_restores_even_when_the_block_raises():
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with pytest.raises(RuntimeError), handling(STOP_SIGNALS, _on) as installed:
        assert installed and all(signal.getsignal(sig) is _on for sig in STOP_SIGNALS)
        raise RuntimeError
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before


def test_install_returns_the_restore():
    before = signal.getsignal(signal.SIGTERM)
    restore = install([signal.SIGTERM], _on)
    assert signal.getsignal(signal.SIGTERM) is _on
    restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_off_the_main_thread_nothing_is_installed():
    seen = []

    def worker():
        with handling(STOP_SIGNALS, _on) as installed:
            seen.append(installed)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [False] and signal.getsignal(signal.SIGINT) is not _on
