"""The Watch view's system pane: the latest CPU, memory and GPU figures of the run shown, as a
line of text and sparklines of CPU, RSS, GPU utilisation and GPU memory.

It draws `SystemSample`s read from the run's system.jsonl (train/system_metrics.py), the same
way for the run this console trains and for one followed from another process or host, and says
whose figures they are: the process that took the newest sample (its pid, and its host when
another), or this console's process, whose CPU and RSS include the console's own (a run trained
here; not the same run resumed later by `tui-trainer run --resume`). On a short terminal
(MainScreen's `-short`) the sparklines go and the pane is one line (watch.tcss).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from tui_trainer.train.system_metrics import GpuSample, SystemSample, format_bytes

# samples drawn: more than a sparkline's width, which keeps the newest
SPARK_SAMPLES = 120
SPARKS = (("cpu", "CPU"), ("rss", "RSS"), ("gpu-util", "GPU"), ("gpu-mem", "GPU mem"))
IN_CONSOLE = "shares this console's process"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _short_bytes(value: int | None) -> str:
    """'1.2G', '850M': the one-line form."""
    text = format_bytes(value)
    return text.replace(" GiB", "G").replace(" MiB", "M").replace(" KiB", "K").replace(" B", "B")


def _gpu_text(gpus: Sequence[GpuSample], compact: bool) -> str:
    """The run's GPUs (every GPU when it uses none of those NVML sees)."""
    mine = [g for g in gpus if g.used_by_run]
    if not mine:
        return f"GPUs {len(gpus)}, none used by the run"
    first = mine[0]
    size = _short_bytes if compact else format_bytes
    memory = f"{size(first.mem_used_bytes)}/{size(first.mem_total_bytes)}"
    text = f"GPU{first.index} {_percent(first.util_percent)} {memory}"
    if not compact:
        if first.temp_c is not None:
            text += f" {first.temp_c:.0f}°C"
        if first.power_w is not None:
            text += f" {first.power_w:.0f} W"
    return text + (f" +{len(mine) - 1} more" if len(mine) > 1 else "")


def taken_here(sample: SystemSample, in_console: bool) -> bool:
    """Whether this console's process took the sample; `in_console` where the sample does not
    say (a file written before samples named their process)."""
    if sample.pid is None:
        return in_console
    return sample.pid == os.getpid() and sample.host in (None, socket.gethostname())


def process_text(sample: SystemSample, in_console: bool, compact: bool) -> str:
    """Whose figures: "(console process)", "(pid 812)", "(pid 812 on gpu-2)"; "" when unknown."""
    if taken_here(sample, in_console):
        return f"[dim]({'console process' if compact else IN_CONSOLE})[/dim]"
    if sample.pid is None:
        return ""
    elsewhere = sample.host and sample.host != socket.gethostname()
    return f"[dim](pid {sample.pid}{f' on {escape(sample.host)}' if elsewhere else ''})[/dim]"


def latest_text(sample: SystemSample | None, in_console: bool, compact: bool = False) -> str:
    """The newest sample as one line (markup); `in_console`: the run shown trains in this
    console, for samples that do not name their process."""
    if sample is None:
        return "[dim]system: no samples yet[/dim]"
    size = _short_bytes if compact else format_bytes
    parts = [f"CPU {_percent(sample.cpu_percent)}", f"RSS {size(sample.rss_bytes)}"]
    if sample.host_mem_total_bytes is not None:
        host = f"{size(sample.host_mem_used_bytes)}/{size(sample.host_mem_total_bytes)}"
        parts.append(f"host {host}")
    if sample.cgroup_mem_limit_bytes is not None and not compact:
        parts.append(f"limit {size(sample.cgroup_mem_limit_bytes)}")
    if sample.gpus:
        parts.append(_gpu_text(sample.gpus, compact))
    elif sample.note and not compact:
        parts.append(f"[dim]{escape(sample.note)}[/dim]")
    elif not compact:
        parts.append("no GPU")
    process = process_text(sample, in_console, compact)
    return "  ".join([*parts, process] if process else parts)


def series(samples: Sequence[SystemSample]) -> dict[str, list[float]]:
    """Each sparkline's values, one per sample that has the figure."""
    run_gpus = [s.run_gpus for s in samples]
    util = [[g.util_percent for g in gpus if g.util_percent is not None] for gpus in run_gpus]
    memory = [[g.mem_used_bytes for g in gpus if g.mem_used_bytes is not None] for gpus in run_gpus]
    return {
        "cpu": [s.cpu_percent for s in samples if s.cpu_percent is not None],
        "rss": [float(s.rss_bytes) for s in samples if s.rss_bytes is not None],
        "gpu-util": [sum(u) / len(u) for u in util if u],
        "gpu-mem": [float(sum(m)) for m in memory if m],
    }


class SystemPane(Vertical):
    """The latest figures and their sparklines; `show` redraws them. Both forms of the latest
    line are kept, and the stylesheet shows the one the terminal's height calls for."""

    def compose(self) -> ComposeResult:
        yield Static(latest_text(None, False), id="system-latest")
        yield Static(latest_text(None, False, compact=True), id="system-line")
        with Horizontal(id="system-sparks"):
            for key, label in SPARKS:
                with Horizontal(id=f"cell-{key}", classes="system-cell"):
                    yield Static(label, classes="system-label")
                    yield Sparkline([], id=f"spark-{key}")

    def show(self, samples: Sequence[SystemSample], in_console: bool) -> None:
        samples = list(samples)[-SPARK_SAMPLES:]
        latest = samples[-1] if samples else None
        self.query_one("#system-latest", Static).update(latest_text(latest, in_console))
        self.query_one("#system-line", Static).update(latest_text(latest, in_console, True))
        self.set_class(latest is None, "-empty")
        for key, values in series(samples).items():
            self.query_one(f"#spark-{key}", Sparkline).data = values
            self.query_one(f"#cell-{key}").set_class(not values, "-empty")
