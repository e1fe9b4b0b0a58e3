"""Who holds a run folder, and whether that holder is still alive.

A process that trains in a folder holds two files there for as long as it trains:

    owner.lock   an OS lock (`filelock`, flock on Unix): a second `--resume` of the same run
                 fails at once instead of training the folder twice; the kernel drops it when the
                 holder dies, even by `kill -9`, so it never needs cleaning up
    owner.json   who holds it: host, pid, the process's start time (Linux: /proc/<pid>/stat
                 field 22, clock ticks since boot, with /proc/sys/kernel/random/boot_id;
                 elsewhere psutil's create_time when psutil is installed) and a heartbeat, a
                 counter and a time rewritten every `heartbeat_interval()` seconds by a daemon
                 thread (so it moves during a decode, a frozen-feature pass or a long epoch)

owner.json is removed when the holder ends cleanly; one left behind is a holder that died.
Readers judge it (`liveness`): on this host the holder is alive only if that very process is
(same pid, start time and boot id: a dead pid reused by another process is not the run); from
another host only its heartbeat can tell, and it is judged by change seen from here (this host's
clock, never the two hosts' clocks compared): a beat unchanged for `STALE_AFTER` intervals is
`stale`, a holder seen for the first time is alive.

Shared network folders: flock is only as good as the filesystem's lock manager. On NFSv4 and on
NFSv3 with lockd (nfslock) running on client and server, flock works across machines (Linux maps
it to a POSIX byte-range lock); on a mount with `nolock`/`local_lock=all`, on some old clients,
and on sshfs or some FUSE/SMB setups, it is local to one machine, so two machines can both take
"the" lock. There the heartbeat still shows a live run as `running` to every machine, which keeps
`--resume` from taking it over, but a simultaneous start from two machines is not prevented.
Where flock is missing altogether the run proceeds unlocked (`FolderLock.acquire` returns False).

Sweep members are claimed with the same two files in a folder per member (runs/claims.py).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tui_trainer.errors import UserError
from tui_trainer.events import RunStatus
from tui_trainer.files import cache_dir, read_json, write_json_atomic, write_text_atomic

OWNER_FILE = "owner.json"
LOCK_FILE = "owner.lock"
HEARTBEAT_ENV = "TUI_TRAINER_HEARTBEAT"  # seconds between beats (tests set a tiny one)
DEFAULT_INTERVAL = 30.0
STALE_AFTER = 3  # intervals without a change seen from here before a remote holder is stale
CREATE_TIME_TOLERANCE = 2.0  # seconds: psutil's create_time moves when the clock is stepped
SEEN_FILE = "liveness.json"  # in the user cache folder: the beats this host has seen
SEEN_MAX = 500  # entries kept in it, the most recently seen first
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
THREAD_NAME = "tui-trainer-heartbeat"
# errnos of a file system without locks: the run goes on unlocked there
NO_LOCKS = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP})


def heartbeat_interval() -> float:
    try:
        value = float(os.environ.get(HEARTBEAT_ENV) or DEFAULT_INTERVAL)
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


# --- process identity ----------------------------------------------------------------------


def _boot_id() -> str | None:
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def _proc_start(pid: int) -> dict[str, Any] | None:
    """{"start_ticks", "boot_id"} from /proc; {} when /proc cannot tell (not Linux, hidepid);
    None when /proc says there is no such process."""
    if not Path("/proc/self/stat").exists():
        return {}
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    # field 2, the command, is in parentheses and may hold spaces: count from the last ")"
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return {"start_ticks": int(fields[19]), "boot_id": _boot_id()}
    except (IndexError, ValueError):
        return {}


def _psutil_start(pid: int) -> dict[str, Any] | None:
    """{"create_time"} from psutil if installed; {} when it cannot tell; None: no such process."""
    try:
        import psutil
    except ImportError:
        return {}
    try:
        return {"create_time": psutil.Process(pid).create_time()}
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:  # AccessDenied and the like: alive, identity unknown
        return {}


def process_identity(pid: int) -> dict[str, Any] | None:
    """What tells process `pid` on this host apart from a later one given the same pid; None if
    there is no such process. A process we may not signal (PermissionError) is alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    except (OverflowError, ValueError):
        return None
    proc = _proc_start(pid)
    found = _psutil_start(pid) if proc == {} else proc
    return None if found is None else {**(proc or {}), **found}


def this_process() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **(process_identity(os.getpid()) or {}),
    }


def same_process(owner: dict[str, Any]) -> bool:
    """Whether `owner` (recorded on this host) is a process alive now: same pid, and the same
    start time and boot where both sides know them."""
    try:
        pid = int(owner.get("pid") or 0)
    except (TypeError, ValueError):
        return False
    now = process_identity(pid) if pid > 0 else None  # signal 0 to pid <= 0 asks a group
    if now is None:
        return False
    if owner.get("start_ticks") is not None and now.get("start_ticks") is not None:
        return (owner["start_ticks"], owner.get("boot_id")) == (now["start_ticks"], now["boot_id"])
    if owner.get("create_time") is not None and now.get("create_time") is not None:
        return abs(float(owner["create_time"]) - now["create_time"]) <= CREATE_TIME_TOLERANCE
    return True  # the pid is alive and nothing else can be compared: as without owner.json


# --- liveness --------------------------------------------------------------------------------


def read_owner(folder: Path) -> dict[str, Any]:
    return read_json(Path(folder) / OWNER_FILE)


def owns(owner: dict[str, Any], pid: Any, host: Any) -> bool:
    """Whether owner.json speaks of the process another record (summary.json) names."""
    return bool(owner) and str(owner.get("pid")) == str(pid) and owner.get("host") == host


def liveness(owner: dict[str, Any], folder: Path) -> RunStatus:
    """`running`, `crashed` (this host: that process is gone) or `stale` (another host: its
    heartbeat has not changed for STALE_AFTER of its intervals, as seen from here)."""
    if owner.get("host") == socket.gethostname():
        return RunStatus.RUNNING if same_process(owner) else RunStatus.CRASHED
    return RunStatus.RUNNING if _beat_fresh(owner, Path(folder)) else RunStatus.STALE


def _clock() -> tuple[str, float]:
    """This host's clock for "how long since the beat changed": monotonic within one boot (a
    wall-clock step does not age a beat), the wall clock where there is no boot id."""
    boot = _boot_id()
    return (boot, time.monotonic()) if boot else ("wall", time.time())


def _seen_path() -> Path:
    return cache_dir() / SEEN_FILE


def seen_key(folder: Path) -> str:
    """The cache's key for a run folder: per host and boot too, as a home may be shared."""
    return f"{socket.gethostname()}|{_boot_id()}|{Path(folder).resolve()}"


def _beat_fresh(owner: dict[str, Any], folder: Path) -> bool:
    key = seen_key(folder)
    claim = [owner.get("host"), owner.get("pid"), owner.get("start_ticks"), owner.get("started_at")]
    clock, clock_now = _clock()
    mark = {"claim": claim, "beat": owner.get("beat"), "clock": clock}
    path = _seen_path()
    seen = read_json(path)
    entry = seen.get(key)
    if not _same_beat(entry, mark, clock_now):
        seen[key] = {**mark, "at": clock_now, "wall": time.time()}
        _save_seen(path, seen)
        return True  # first seen, or changed since: alive
    try:
        interval = float(owner.get("interval") or DEFAULT_INTERVAL)
    except (TypeError, ValueError):
        interval = DEFAULT_INTERVAL
    return clock_now - entry["at"] < STALE_AFTER * interval


def _same_beat(entry: Any, mark: dict[str, Any], now: float) -> bool:
    """Whether the cache's entry saw this very beat of this claim, on this boot's clock."""
    if not isinstance(entry, dict) or not isinstance(entry.get("at"), int | float):
        return False
    return all(entry.get(k) == v for k, v in mark.items()) and entry["at"] <= now


def _save_seen(path: Path, seen: dict[str, Any]) -> None:
    """Keep the SEEN_MAX most recent; a cache we cannot write only makes every look a first."""
    recent = sorted(seen.items(), key=lambda kv: -_wall(kv[1]))[:SEEN_MAX]
    with suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, dict(recent))


def _wall(entry: Any) -> float:
    value = entry.get("wall") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, int | float) else 0.0


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
        self._written = threading.Lock()  # the beat thread and `note` both rewrite the file
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
            owner = read_owner(self.folder)
            here = owner.get("host") == socket.gethostname()
            if owner and (not here or same_process(owner)):
                return f"held by pid {owner.get('pid')} on {owner.get('host')}"
            time.sleep(0.1)
        return "held by another process (owner.json does not name it yet)"


class Claim:
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
        summary may still say `running`: readers judge the holder it names, gone by then)."""
        path = self.folder / OWNER_FILE
        if self.started and not clean:
            return
        with suppress(OSError):
            if self.started or self._previous is None:
                path.unlink(missing_ok=True)
            else:  # stopped before training: the folder as it was
                write_text_atomic(path, self._previous)


@contextmanager
def hold(
    folder: Path | None, what: str, check: Callable[[], None] | None = None
) -> Iterator[Claim]:
    """Lock `folder`, run `check` under the lock (it may raise UserError), then write owner.json
    and beat until the block ends. `folder` None (a torchrun rank other than 0) only checks."""
    claim = Claim(folder)
    if folder is None:
        if check:
            check()
        yield claim
        return
    lock = FolderLock(folder, what)
    lock.acquire()
    try:
        if check:
            check()
        claim.remember()
        beat = Heartbeat(folder)
        clean = False
        try:
            beat.start()
            yield claim
            clean = True
        finally:
            beat.stop()
            claim.leave(clean)
    finally:
        lock.release()
