"""Signal handlers installed for a while, then the previous ones put back: the one way the CLI's
run and sweep commands and the console take Ctrl-C, SIGTERM and SIGHUP.

Python runs handlers on the main thread only and refuses to install one from another thread
(a command run by a test's thread, the console under a Pilot): there nothing is installed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType

Handler = Callable[[int, FrameType | None], object]
# What stops a command cleanly: Ctrl-C, and `kill` (a scheduler's, a --parallel parent's).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def handling(signals: Iterable[int], handler: Handler) -> Iterator[bool]:
    """`handler` for each of `signals` while the block runs; the previous handlers are back when
    it ends, however it ends. Yields False (and installs nothing) off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous: dict[int, object] = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, handler)
        yield True
    finally:
        for sig, old in previous.items():
            # None: a handler installed outside Python, which cannot be put back from here
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, old)


def install(signals: Iterable[int], handler: Handler) -> Callable[[], None]:
    """`handling` for a caller whose install and restore happen in two calls (an app's mount
    and unmount): installs now, returns the function that restores."""
    stack = contextlib.ExitStack()
    stack.enter_context(handling(signals, handler))
    return stack.close
