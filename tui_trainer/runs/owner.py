"""Who owns a folder a process trains in (a run folder, a sweep member's claim), and whether that
owner is alive: the one place that answers it.

While it trains, the owner holds `owner.lock` (flock, taken without waiting; the kernel drops it
when the owner dies, even by `kill -9`) and `owner.json`, the `Owner` record, rewritten every
interval by a daemon thread so it stays fresh through a long decode or epoch. A clean end removes
owner.json. One rule judges it (`Owner.judge`): on this host the owner is alive iff that very
process is (pid and create time: a reused pid is another process); from another host, iff the
file was rewritten within STALE_AFTER intervals, by its mtime as the shared filesystem reports
it, so that reading never writes anything.

flock works across machines on NFSv4 and on NFSv3 with lockd, but is local to each machine on
`nolock`/`local_lock=all` mounts, sshfs and some FUSE/SMB setups: there the heartbeat still keeps
a live run from being taken over, but two machines starting at the same instant may both train.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.files import read_json, write_json_atomic, write_text_atomic

OWNER_FILE = "owner.json"
LOCK_FILE = "owner.lock"
HEARTBEAT_ENV = "TUI_TRAINER_HEARTBEAT"  # seconds between beats (tests set a tiny one)
DEFAULT_INTERVAL = 30.0
STALE_AFTER = 3  # intervals without a rewrite before another host's owner is stale
# the file server stamps the mtime with its clock, we compare with ours: allow that much skew
CLOCK_SKEW_S = 30.0
CREATE_TIME_TOLERANCE = 2.0  # seconds: psutil's create_time moves when the clock is stepped
THREAD_NAME = "tui-trainer-heartbeat"
# errnos of a file system without locks: the run goes on unlocked there
NO_LOCKS = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP})


def heartbeat_interval() -> float:
    try:
        value = float(os.environ.get(HEARTBEAT_ENV) or DEFAULT_INTERVAL)
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def process_identity(pid: int) -> dict[str, float] | None:
    """{"create_time": ...} of process `pid` on this host, {} when it is alive but hidden from
    us (hidepid, another user's), None when there is no such process."""
    if pid <= 0:
        return None
    try:
        return {"create_time": psutil.Process(pid).create_time()}
    except psutil.NoSuchProcess:
        return {} if psutil.pid_exists(pid) else None  # signal 0 sees a hidden process
    except psutil.Error:
        return {}


def this_process() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **(process_identity(os.getpid()) or {}),
    }


def silent(last: float, interval: Any) -> bool:
    """Another host's writer is gone: nothing from it since `last` (a file's mtime, a stamp) for
    STALE_AFTER of its beat intervals plus the clock skew allowed between the two machines."""
    beats = _number(interval) or DEFAULT_INTERVAL
    return time.time() - last >= STALE_AFTER * max(beats, 0.0) + CLOCK_SKEW_S


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_pid(value: Any) -> int | None:
    """A process id as a record holds it; None for anything else (0 or -1 would name a group)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@dataclass(frozen=True)
class Owner:
    """owner.json as read once, judged from here when read (`status`)."""

    host: str
    pid: int | None
    status: RunStatus  # RUNNING: alive; CRASHED (this host) or STALE (another host): gone
    create_time: float | None = None
    interval: float = DEFAULT_INTERVAL
    beat: int = 0
    sweep: str = ""
    member: str = ""
    run_id: str | None = None  # a claim's run folder, once it exists

    @classmethod
    def read(cls, folder: Path) -> Owner | None:
        """The folder's owner, live or dead; None when there is no readable owner.json."""
        path = Path(folder) / OWNER_FILE
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        data = read_json(path)
        return cls.judge(data, mtime) if data else None

    @classmethod
    def judge(cls, data: dict[str, Any], mtime: float) -> Owner:
        host, pid = str(data.get("host") or "?"), parse_pid(data.get("pid"))
        created = _number(data.get("create_time"))
        interval = _number(data.get("interval")) or DEFAULT_INTERVAL
        if host == socket.gethostname():
            alive, dead = pid is not None and same_process(pid, created), RunStatus.CRASHED
        else:
            alive = not silent(mtime, interval)
            dead = RunStatus.STALE
        run_id = data.get("run_id")
        return cls(
            host=host,
            pid=pid,
            status=RunStatus.RUNNING if alive else dead,
            create_time=created,
            interval=interval,
            beat=int(_number(data.get("beat")) or 0),
            sweep=str(data.get("sweep") or ""),
            member=str(data.get("member") or ""),
            run_id=str(run_id) if run_id else None,
        )

    @property
    def live(self) -> bool:
        return self.status is RunStatus.RUNNING

    def names(self, pid: Any, host: Any) -> bool:
        """Whether this is the process another record (summary.json) names."""
        return self.pid is not None and str(self.pid) == str(pid) and self.host == host

    def describe(self) -> str:
        who = f"pid {self.pid} on {self.host}" if self.pid else f"a process on {self.host}"
        return who if self.live else f"{who}, {self.status}"


def same_process(pid: int, create_time: float | None) -> bool:
    """Whether process `pid` of this host is alive and, where both sides know it, was created
    at `create_time` (a dead pid reused by a later process is not it)."""
    now = process_identity(pid)
    if now is None:
        return False
    known = now.get("create_time")
    return create_time is None or known is None or abs(known - create_time) <= CREATE_TIME_TOLERANCE


# --- holding a folder ------------------------------------------------------------------------


class Heartbeat:
    """Rewrites owner.json (beat += 1) every `interval` seconds from a daemon thread."""

    def __init__(
        self, folder: Path, interval: float | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        self.path = Path(folder) / OWNER_FILE
        self.interval = interval or heartbeat_interval()
        self.owner = {**this_process(), "started_at": time.time(), "interval": self.interval}
        self.owner.update(extra or {}, beat=0, beat_at=time.time())
        self._written = threading.Lock()  # the beat thread and `write` both rewrite the file
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)

    def start(self) -> None:
        self.write()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 10)

    def write(self, **fields: Any) -> None:
        """Rewrite the file now, with `fields` added to what it says from then on."""
        with self._written, suppress(OSError):  # a full or vanished disk must not end the run
            self.owner.update(fields)
            write_json_atomic(self.path, self.owner)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.write(beat=self.owner["beat"] + 1, beat_at=time.time())


class FolderLock:
    """owner.lock, held without waiting: `acquire` raises UserError naming the holder."""

    def __init__(self, folder: Path, what: str) -> None:
        from filelock import FileLock

        self.folder, self.what = Path(folder), what
        path = str(self.folder / LOCK_FILE)
        try:  # filelock 4: no silent soft-lock file (a kill would leave it behind)
            self._lock = FileLock(path, thread_local=False, fallback_to_soft=False)
        except TypeError:
            self._lock = FileLock(path, thread_local=False)
        self.held = False

    def acquire(self) -> bool:
        """True once held; False where the filesystem has no locks (the run goes on unlocked)."""
        taken = self.try_acquire()
        if taken is None:
            raise UserError(f"{self.what} is {self._holder()}: wait for it or stop it")
        return taken

    def try_acquire(self) -> bool | None:
        """Without waiting: True once held, None when another process holds it, False where
        the filesystem has no locks. UserError when the lock file cannot be opened."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return None
        except NotImplementedError:
            return False
        except OSError as exc:
            if exc.errno in NO_LOCKS:
                return False
            raise UserError(
                f"cannot lock {self.folder / LOCK_FILE} ({exc.strerror}): make it writable for "
                "every user who runs in this folder (its group and mode)"
            ) from None
        self.held = True
        return True

    def release(self) -> None:
        if self.held:
            self._lock.release()
            self.held = False

    def _holder(self) -> str:
        """The holder as owner.json names it; it may be a moment late in writing it."""
        for _ in range(20):
            owner = Owner.read(self.folder)
            if owner is not None and (owner.live or owner.host != socket.gethostname()):
                return f"held by pid {owner.pid} on {owner.host}"
            time.sleep(0.1)
        return "held by another process (owner.json does not name it yet)"


class Hold:
    """What `hold` yields: set `started` once the folder is this process's run (its summary
    names this process), so a clean end removes owner.json instead of putting the old one back."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.started = False
        self._previous: str | None = None

    def remember(self) -> None:
        with suppress(OSError):
            self._previous = (self.folder / OWNER_FILE).read_text()

    def leave(self, clean: bool) -> None:
        """A clean end removes owner.json; an exception out of a started run keeps it (the
        summary may still say `running`: readers judge the owner it names, gone by then)."""
        path = self.folder / OWNER_FILE
        if self.started and not clean:
            return
        with suppress(OSError):
            if self.started or self._previous is None:
                path.unlink(missing_ok=True)
            else:  # stopped before training: the folder as it was
                write_text_atomic(path, self._previous)


@contextmanager
def hold(folder: Path | None, what: str, check: Callable[[], None] | None = None) -> Iterator[Hold]:
    """Lock `folder`, run `check` under the lock (it may raise UserError), then write owner.json
    and beat until the block ends. `folder` None (a torchrun rank other than 0) only checks."""
    held = Hold(folder)
    if folder is None:
        if check:
            check()
        yield held
        return
    lock = FolderLock(folder, what)
    lock.acquire()
    try:
        if check:
            check()
        held.remember()
        beat = Heartbeat(folder)
        clean = False
        try:
            beat.start()
            yield held
            clean = True
        finally:
            beat.stop()
            held.leave(clean)
    finally:
        lock.release()
