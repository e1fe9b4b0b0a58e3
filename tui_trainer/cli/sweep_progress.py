"""`sweep NAME --parallel N`: the signals and the view of the pool (studies/parallel.py).

On a terminal a Rich Live table redrawn from each snapshot, its last frame left on screen; piped,
one line per member whenever its state or its finished epochs change, then the final table. The
first Ctrl-C (or SIGTERM) stops every child cleanly, a second sends their hard stop.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich import box
from rich.live import Live
from rich.table import Table

from tui_trainer.cli.common import err, interactive, out
from tui_trainer.errors import Stopped
from tui_trainer.events import RunStatus
from tui_trainer.runs.display import format_number
from tui_trainer.runs.status import EXIT_DONE, EXIT_ELSEWHERE, EXIT_INTERRUPTED
from tui_trainer.signals import STOP_SIGNALS, Handler, handling
from tui_trainer.studies import decode_cache, sweep_file, sweeps
from tui_trainer.studies.parallel import (
    ChildOptions,
    ChildState,
    MemberProgress,
    PoolSnapshot,
    StopLevel,
    SweepPool,
)
from tui_trainer.studies.slots import Slot

COLUMNS = ("#", "member", "state", "epoch", "val_acc", "where", "log")
# a child's exits the member's state explains; any other points at its log
CLEAN_EXITS = (EXIT_DONE, EXIT_ELSEWHERE, EXIT_INTERRUPTED)


def run_parallel(
    plan: sweep_file.Sweep,
    todo: list[sweep_file.SweepMember],
    slots: list[Slot],
    options: ChildOptions,
) -> int:
    """Fill the decode cache, run the pool with its view, and return the sweep's exit code."""
    where = ", ".join(sorted({s.describe() for s in slots}))
    out.print(f"parallel: up to {len(slots)} members at once ({where})", highlight=False)
    stop, abort = threading.Event(), threading.Event()
    with handling(STOP_SIGNALS, _stopper(stop, abort)):
        try:
            jobs = decode_cache.decode_jobs(todo, options.data_dir)
            decode_cache.fill_decode_cache(jobs, _say_decode, stop)
        except Stopped:
            err.print(f"stopped before any member started: rerun `tui-trainer sweep {plan.name}`")
            return EXIT_INTERRUPTED
        pool = SweepPool(plan, todo, slots, options)
        interrupted = _run_with_view(pool, len(plan.members), stop, abort)
    if interrupted:
        err.print(f"interrupted: continue the sweep with `tui-trainer sweep {plan.name}`")
    return sweeps.sweep_exit_code(sweeps.member_states(plan, options.runs_dir), interrupted)


def _say_decode(job: decode_cache.DecodeJob, done: bool) -> None:
    if not done:
        out.print(
            f"decoding {len(job.paths)} images at {job.size}px once for "
            f"{len(job.members)} member(s)",
            highlight=False,
        )


def _run_with_view(pool, total: int, stop: threading.Event, abort: threading.Event) -> bool:
    if not interactive():
        lines = _PlainLines(total)
        interrupted = pool.run(lines, stop, abort)
        out.print(member_table(lines.last))
        return interrupted
    with Live(console=out, auto_refresh=False, transient=False) as live:

        def show(snapshot: PoolSnapshot) -> None:
            live.update(member_table(snapshot), refresh=True)

        return pool.run(show, stop, abort)


def _stopper(stop: threading.Event, abort: threading.Event) -> Handler:
    """The first SIGINT/SIGTERM sets `stop`, a second `abort`: the pool forwards them."""

    def handler(signum, frame) -> None:
        if stop.is_set():
            abort.set()
        stop.set()

    return handler


def state_text(row: MemberProgress) -> str:
    """What the member is doing, from its runs-folder status and its child."""
    if row.child is None:
        elsewhere = row.status == RunStatus.RUNNING
        return "running elsewhere" if elsewhere else row.status
    if row.child is ChildState.QUEUED:
        return "queued"
    if row.child is ChildState.NOT_STARTED:
        return "not started"
    if row.child is ChildState.RUNNING:
        return "starting" if row.status == sweeps.PENDING else row.status
    if row.exit_code not in CLEAN_EXITS or row.status == sweeps.PENDING:
        return f"{row.status} (exit {row.exit_code}: see its log)"
    if row.status == RunStatus.RUNNING:  # its child found it claimed by another process
        return "running elsewhere"
    return row.status


def _where(row: MemberProgress) -> str:
    parts = [f"pid {row.pid}"] if row.pid else []
    if row.slot is not None:
        parts.append(row.slot.describe())
    return ", ".join(parts) or "-"


def _shown(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _cells(row: MemberProgress) -> tuple[str, ...]:
    epoch = f"{row.epoch}/{row.epochs}" if row.epochs else "-"
    return (
        str(row.index),
        row.name,
        state_text(row),
        epoch,
        format_number(row.val_acc),
        _where(row),
        _shown(row.log),
    )


def member_table(snapshot: PoolSnapshot | None) -> Table:
    """The members' table; the logs share one folder, named once in the title."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in COLUMNS:
        table.add_column(col, no_wrap=True)
    rows = snapshot.members if snapshot else ()
    folders = {row.log.parent for row in rows if row.log is not None}
    for row in rows:
        cells = _cells(row)
        log = row.log.name if len(folders) == 1 and row.log is not None else cells[-1]
        table.add_row(*cells[:-1], log)
    if len(folders) == 1:
        table.title = f"logs in {_shown(folders.pop())}/"
    if snapshot is not None:
        table.caption = _caption(snapshot)
    return table


def _caption(snapshot: PoolSnapshot) -> str:
    running = snapshot.running
    if snapshot.done:
        counts: dict[str, int] = {}
        for row in snapshot.members:
            counts[state_text(row)] = counts.get(state_text(row), 0) + 1
        return "done: " + ", ".join(f"{n} {state}" for state, n in counts.items())
    if snapshot.stop is StopLevel.STOPPING:
        return f"stopping: {running} member(s) saving (Ctrl-C again to abort them)"
    if snapshot.stop is StopLevel.ABORTING:
        return f"aborting: {running} member(s) left"
    return f"{running} running; Ctrl-C stops them all cleanly (resumable)"


class _PlainLines:
    """Piped output: one line per member whenever its state or its finished epochs change."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.seen: dict[int, tuple] = {}
        self.level = StopLevel.NONE
        self.last: PoolSnapshot | None = None

    def __call__(self, snapshot: PoolSnapshot) -> None:
        self.last = snapshot
        if snapshot.stop is not self.level:
            self.level = snapshot.stop
            print(_caption(snapshot), flush=True)
        for row in snapshot.members:
            key = (state_text(row), row.epoch, row.pid)
            if self.seen.get(row.index) != key:
                self.seen[row.index] = key
                print(self._line(row), flush=True)

    def _line(self, row: MemberProgress) -> str:
        _, name, state, epoch, val_acc, where, log = _cells(row)
        line = f"{row.index}/{self.total} {name}: {state}"
        if row.epoch:
            line += f"  epoch {epoch}  val_acc {val_acc}"
        if row.pid:
            line += f"  ({where})  log {log}"
        return line
