"""The Watch view's system pane on a fixture system.jsonl: the figures it shows, for a run
followed from its folder and for one trained in this console, and snapshots at 80x24 and
120x36."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

from textual.widgets import Sparkline, Static

from tests.support.tui import ScriptedEngine, drive, make_fixture_runs, wait_for
from tui_trainer.runs.store import Run
from tui_trainer.train.system_metrics import GpuSample, SystemSample
from tui_trainer.tui.app import make_app
from tui_trainer.tui.widgets.system_pane import IN_CONSOLE, latest_text, series

GIB = 1 << 30
MISSING_DATA = Path("/nonexistent/caltech101")  # as in test_snapshots: no data check varies
SMALL, LARGE = (80, 24), (120, 36)
FOLLOWED = "20240101-100000-scratch"


def fixture_samples(n: int = 40) -> list[SystemSample]:
    """A run on GPU 0 beside another job on GPU 1: figures that rise and fall, fixed times."""
    samples = []
    for i in range(n):
        wave = (i % 10) / 10
        mine = GpuSample(
            0, "GPU-aaaa", "NVIDIA H100", True, 60 + 35 * wave, (8 + 4 * wave) * GIB // 1,
            80 * GIB, 55 + 10 * wave, 200 + 100 * wave,
        )  # fmt: skip
        other = GpuSample(1, "GPU-bbbb", "NVIDIA H100", False, 100.0, 70 * GIB, 80 * GIB, 80, 650)
        samples.append(
            SystemSample(
                t=1_700_000_000 + 2 * i,
                cpu_percent=100 + 80 * wave,
                rss_bytes=int((2 + wave) * GIB),
                host_mem_used_bytes=40 * GIB,
                host_mem_total_bytes=256 * GIB,
                cgroup_mem_limit_bytes=64 * GIB,
                gpus=(mine, other),
            )
        )
    return samples


def write_system(run: Run, samples: list[SystemSample], cut_last: bool = True) -> None:
    text = "".join(json.dumps(s.to_row()) + "\n" for s in samples)
    run.system_path.write_text(text + ('{"t": 1700009999, "cpu_perc' if cut_last else ""))


def followed_app(tmp_path):
    runs_dir = tmp_path / "runs"
    make_fixture_runs(runs_dir)
    write_system(Run(runs_dir / FOLLOWED), fixture_samples())
    return make_app(data_dir=MISSING_DATA, runs_dir=runs_dir)


async def follow(pilot) -> None:
    """The fixture run followed, with no toast in the picture."""
    await wait_for(pilot, lambda: pilot.app.data_checked, what="the data check")
    await pilot.pause()
    pilot.app.clear_notifications()
    pilot.app.show_run(Run(pilot.app.runs_dir / FOLLOWED))
    await pilot.pause()


def pane_text(app, which: str = "#system-latest") -> str:
    return str(app.screen.query_one(which, Static).render())


def test_the_pane_shows_the_latest_sample_of_a_followed_run(tmp_path):
    app = followed_app(tmp_path)
    samples = fixture_samples()

    async def scenario(pilot):
        await follow(pilot)
        last = samples[-1]
        text = pane_text(app)
        assert f"CPU {last.cpu_percent:.0f}%" in text and "RSS 2.9 GiB" in text
        assert "host 40.0 GiB/256.0 GiB" in text and "limit 64.0 GiB" in text
        # the run's GPU, not the other job's
        assert "GPU0 92% 11.6 GiB/80.0 GiB 64°C 290 W" in text and "GPU1" not in text
        assert IN_CONSOLE not in text
        sparks = {s.id: list(s.data) for s in app.screen.query(Sparkline)}
        assert sparks["spark-gpu-util"] == series(samples)["gpu-util"]
        assert len(sparks["spark-cpu"]) == len(samples)  # the cut last line is not a sample

    drive(app, scenario, (120, 36))


def test_new_samples_reach_the_pane_on_the_next_poll(tmp_path):
    app = followed_app(tmp_path)
    run = Run(app.runs_dir / FOLLOWED)

    async def scenario(pilot):
        await follow(pilot)
        more = fixture_samples(41)
        more[-1] = SystemSample(more[-1].t, 333.0, GIB, None, None, note="no GPU figures: x")
        write_system(run, more, cut_last=False)
        await wait_for(pilot, lambda: "CPU 333%" in pane_text(app), what="the new sample")
        assert "no GPU figures: x" in pane_text(app)

    drive(app, scenario, (120, 36))


def test_a_run_of_this_console_says_it_shares_the_process(tiny_data, tmp_path):
    engine = ScriptedEngine(epochs=1, steps=2, run_id="20240105-120000-scratch")
    app = make_app(data_dir=tiny_data, runs_dir=tmp_path / "runs", engine=engine)

    async def scenario(pilot):
        await wait_for(pilot, lambda: app.data_checked, what="the data check")
        await pilot.press("ctrl+s", "enter")  # Start, then "in this console"
        await wait_for(pilot, lambda: app.live is not None and app.live.finished, what="the run")
        assert "no samples yet" in pane_text(app)
        write_system(Run(app.runs_dir / engine.run_id), fixture_samples(3))
        await wait_for(pilot, lambda: IN_CONSOLE in pane_text(app), what="the pane")

    drive(app, scenario, (120, 36))


def test_the_pane_names_the_process_that_took_the_sample():
    sample = fixture_samples(1)[0]
    other = dataclasses.replace(sample, pid=os.getpid() + 1, host=socket.gethostname())
    row = SystemSample.from_row(json.loads(json.dumps(other.to_row())))
    assert row is not None and (row.pid, row.host) == (other.pid, other.host)
    # a run of this console resumed by another process: its figures are not the console's
    assert f"(pid {other.pid})" in latest_text(other, in_console=True)
    assert IN_CONSOLE not in latest_text(other, in_console=True)
    away = dataclasses.replace(other, host="gpu-box-2")
    assert f"(pid {other.pid} on gpu-box-2)" in latest_text(away, in_console=False, compact=True)
    here = dataclasses.replace(other, pid=os.getpid())
    assert IN_CONSOLE in latest_text(here, in_console=False)
    assert "(console process)" in latest_text(here, in_console=False, compact=True)


def test_a_short_terminal_gets_one_line(tmp_path):
    app = followed_app(tmp_path)

    async def scenario(pilot):
        await follow(pilot)
        line = app.screen.query_one("#system-line", Static)
        assert line.display and not app.screen.query_one("#system-sparks").display
        assert line.size.height == 1 and "GPU0 92% 11.6G/80.0G" in pane_text(app, "#system-line")
        assert len(str(line.render())) <= 80

    drive(app, scenario, SMALL)


def test_snapshot_followed_run_small(snap_compare, tmp_path):
    assert snap_compare(followed_app(tmp_path), terminal_size=SMALL, run_before=follow)


def test_snapshot_followed_run_large(snap_compare, tmp_path):
    assert snap_compare(followed_app(tmp_path), terminal_size=LARGE, run_before=follow)
