"""Claims on sweep members: which process trains a member, from before its run folder exists.

A member is claimed under the hash of its comparable config (`runs.groups.comparable`), not its
sweep's name and index, so the same experiment reached through two sweeps (`report-study` holds
`scratch-lr-sweep`'s members) is one claim. A claim is a folder holding the pair a run folder
holds while it trains (runs/lock.py, the same classes):

    <runs>/.claims/<hash>/owner.lock   the OS lock (filelock), taken without waiting; the kernel
                                       drops it when the holder dies, even by `kill -9`
    <runs>/.claims/<hash>/owner.json   host, pid, process start time and a heartbeat, plus the
                                       sweep, the member's name and, once its folder exists,
                                       the run id

`list_runs` lists folders with a config.json, so `.claims` is never a run. A holder that ends
cleanly removes owner.json (the empty folder and its lock file stay: nothing to clean); one left
behind names a holder that died, and readers judge it with `lock.liveness` like a run's.

Taking a claim (`take_claim`): the flock first. Held by another process: the member is busy. Got
it: owner.json is read too, because flock is only local on some network mounts (see runs/lock.py
for what a shared folder needs): a holder on this host is alive only if that very process is; a
holder on another host whose beat is not already stale is watched for STALE_AFTER of its
intervals, and taken over only if its beat did not move. Where the filesystem has no locks at
all the side file is the only guard, and two processes starting the same member at the same
instant may both train it.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trainer.events import RunStatus
from tui_trainer.inside import folder_inside
from tui_trainer.runs import lock

CLAIMS_DIR = ".claims"  # a dot-folder in the runs folder: never a run (it has no config.json)
HASH_CHARS = 24


def claim_hash(key: str) -> str:
    """The claim's name for a member: its comparable config key, hashed."""
    return hashlib.sha256(key.encode()).hexdigest()[:HASH_CHARS]


def claim_folder(runs_dir: Path, key: str) -> Path:
    return Path(runs_dir) / CLAIMS_DIR / claim_hash(key)


@dataclass(frozen=True)
class ClaimHolder:
    """Who holds (or held) a member's claim, as its owner.json says, judged from here."""

    host: str
    pid: int | None
    sweep: str
    member: str
    run_id: str | None  # None until the holder's run folder exists (the first decode is long)
    status: RunStatus  # RUNNING: alive; CRASHED (this host) or STALE (another host): gone

    @property
    def live(self) -> bool:
        return self.status is RunStatus.RUNNING

    def describe(self) -> str:
        who = f"pid {self.pid} on {self.host}" if self.pid else f"a process on {self.host}"
        return who if self.live else f"{who}, {self.status}"


def holder_from(owner: dict[str, Any], folder: Path) -> ClaimHolder:
    try:
        pid = int(owner.get("pid") or 0) or None
    except (TypeError, ValueError):
        pid = None
    run_id = owner.get("run_id")
    return ClaimHolder(
        host=str(owner.get("host") or "?"),
        pid=pid,
        sweep=str(owner.get("sweep") or ""),
        member=str(owner.get("member") or ""),
        run_id=str(run_id) if run_id else None,
        status=lock.liveness(owner, folder),
    )


def read_holder(runs_dir: Path, key: str) -> ClaimHolder | None:
    """The member's claim holder, live or dead; None when nobody holds or left a claim."""
    folder = claim_folder(runs_dir, key)
    owner = lock.read_owner(folder)
    return holder_from(owner, folder) if owner else None


def read_holders(runs_dir: Path) -> dict[str, ClaimHolder]:
    """Every claim with a side file, by `claim_hash`: one listing for a whole sweep."""
    root = Path(runs_dir) / CLAIMS_DIR
    if not root.is_dir():
        return {}
    found = {}
    for folder in sorted(root.iterdir()):
        owner = lock.read_owner(folder) if folder.is_dir() else {}
        if owner:
            found[folder.name] = holder_from(owner, folder)
    return found


class MemberClaim:
    """A claim this process holds, beating until `release` (or the end of a `with` block)."""

    def __init__(self, folder: Path, held: lock.FolderLock, beat: lock.Heartbeat) -> None:
        self.folder = folder
        self._lock = held
        self._beat = beat

    def note_run(self, run_id: str) -> None:
        """Name the run folder in the side file, once it exists."""
        self._beat.write(run_id=run_id)

    def release(self) -> None:
        self._beat.stop()
        (self.folder / lock.OWNER_FILE).unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> MemberClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def take_claim(
    runs_dir: Path, key: str, *, sweep: str, member: str, stop: threading.Event | None = None
) -> MemberClaim | ClaimHolder:
    """The member's claim, taken without waiting, or the live holder that has it. A stop while
    watching a remote holder's beat leaves the claim to it."""
    # made from the runs folder down, refusing a planted link (OSError): no lock or side file
    # is ever written outside the runs folder
    folder = folder_inside(Path(runs_dir), CLAIMS_DIR, claim_hash(key))
    held = lock.FolderLock(folder, f"sweep member {member}")
    if held.try_acquire() is None:
        return _busy_holder(folder, sweep, member)
    alive = _live_holder(folder, stop or threading.Event())
    if alive is not None:
        held.release()
        return alive
    beat = lock.Heartbeat(folder, extra={"sweep": sweep, "member": member, "run_id": None})
    beat.start()
    return MemberClaim(folder, held, beat)


def _busy_holder(folder: Path, sweep: str, member: str) -> ClaimHolder:
    """The holder of a lock we could not take; it may not have written its side file yet."""
    owner = lock.read_owner(folder)
    if owner:
        return holder_from(owner, folder)
    return ClaimHolder("?", None, sweep, member, None, RunStatus.RUNNING)


def _live_holder(folder: Path, stop: threading.Event) -> ClaimHolder | None:
    """With the flock held: a holder the side file still shows alive (flock may be local to
    each machine on a network mount), or None when the claim is free to take."""
    owner = lock.read_owner(folder)
    if not owner:
        return None
    holder = holder_from(owner, folder)
    if owner.get("host") == socket.gethostname():
        mine = lock.same_process(owner) and holder.pid == lock.this_process()["pid"]
        return holder if holder.live and not mine else None
    if not holder.live or _beat_stopped(folder, owner, stop):
        return None
    return holder


def _beat_stopped(folder: Path, owner: dict[str, Any], stop: threading.Event) -> bool:
    """Watch another host's beat for STALE_AFTER of its intervals: True if it never moved (or
    the holder let go), False if it moved or a stop came first."""
    try:
        interval = float(owner.get("interval") or lock.DEFAULT_INTERVAL)
    except (TypeError, ValueError):
        interval = lock.DEFAULT_INTERVAL
    for _ in range(lock.STALE_AFTER):
        if stop.wait(interval):
            return False
        now = lock.read_owner(folder)
        if not now:
            return True
        if _beat_of(now) != _beat_of(owner):
            return False
    return True


def _beat_of(owner: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(owner.get(k) for k in ("host", "pid", "started_at", "beat"))
