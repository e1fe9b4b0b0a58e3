"""Claims on sweep members: which process trains a member, from before its run folder exists.

A claim is a folder owned like a run folder (runs/owner.py), `<runs>/.claims/<hash>/`, named by
the hash of the member's comparable config (`runs.groups.comparable`), so the same experiment
reached through two sweeps is one claim; its owner.json also names the sweep, the member and,
once it exists, the run id.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

from tui_trainer.events import RunStatus
from tui_trainer.inside import folder_inside
from tui_trainer.runs.owner import OWNER_FILE, FolderLock, Heartbeat, Owner

CLAIMS_DIR = ".claims"  # a dot-folder: never listed as a run (it has no config.json)
HASH_CHARS = 24


def claim_hash(key: str) -> str:
    """The claim's name for a member: its comparable config key, hashed."""
    return hashlib.sha256(key.encode()).hexdigest()[:HASH_CHARS]


def claim_folder(runs_dir: Path, key: str) -> Path:
    return Path(runs_dir) / CLAIMS_DIR / claim_hash(key)


def read_holder(runs_dir: Path, key: str) -> Owner | None:
    """The member's claim holder, live or dead; None when nobody holds or left a claim."""
    return Owner.read(claim_folder(runs_dir, key))


def read_holders(runs_dir: Path) -> dict[str, Owner]:
    """Every claim with a side file, by `claim_hash`: one listing for a whole sweep."""
    root = Path(runs_dir) / CLAIMS_DIR
    if not root.is_dir():
        return {}
    found = ((folder.name, Owner.read(folder)) for folder in sorted(root.iterdir()))
    return {name: owner for name, owner in found if owner is not None}


class MemberClaim:
    """A claim this process holds, beating until `release` (or the end of a `with` block)."""

    def __init__(self, folder: Path, held: FolderLock, beat: Heartbeat) -> None:
        self.folder = folder
        self._lock = held
        self._beat = beat

    def note_run(self, run_id: str) -> None:
        """Name the run folder in the side file, once it exists."""
        self._beat.write(run_id=run_id)

    def release(self) -> None:
        self._beat.stop()
        (self.folder / OWNER_FILE).unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> MemberClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def take_claim(runs_dir: Path, key: str, *, sweep: str, member: str) -> MemberClaim | Owner:
    """The member's claim, taken without waiting, or the live holder that has it."""
    # made from the runs folder down, refusing a planted link (OSError): no lock or side file
    # is ever written outside the runs folder
    folder = folder_inside(Path(runs_dir), CLAIMS_DIR, claim_hash(key))
    held = FolderLock(folder, f"sweep member {member}")
    if held.try_acquire() is None:  # its owner may not have written owner.json yet
        return Owner.read(folder) or Owner("?", None, RunStatus.RUNNING, sweep=sweep, member=member)
    # flock is local to each machine on some network mounts: a live owner elsewhere keeps it
    holder = Owner.read(folder)
    mine = holder is not None and holder.names(os.getpid(), socket.gethostname())
    if holder is not None and holder.live and not mine:
        held.release()
        return holder
    beat = Heartbeat(folder, extra={"sweep": sweep, "member": member, "run_id": None})
    beat.start()
    return MemberClaim(folder, held, beat)
