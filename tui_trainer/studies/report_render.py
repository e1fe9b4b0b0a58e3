"""The report's tables as text: Markdown for reading, CSV and JSON for other tools.

Each cell is a group of runs that differ only by seed (studies/report.py): "mean ± std (n)", one
run as its number. `compare_paper` adds the report's number and where ours lie against it:
"below" (all our seeds under it), "above" (all over it) or "within" (it lies inside our
[min, max]). The CSV and JSON keep the fields they had before seeds (value, run, protocol,
paper) and add the spread and the runs behind it; README.md lists the fields.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from tui_trainer.errors import ConfigError
from tui_trainer.studies.report import EMPTY, FORMATS, FULL, Cell, Report, cell_runs, joined_text


def render(report: Report, fmt: str = "md", compare_paper: bool = False) -> str:
    if fmt == "md":
        return render_markdown(report, compare_paper)
    if fmt == "csv":
        return render_csv(report, compare_paper)
    if fmt == "json":
        return json.dumps(report_dict(report, compare_paper), indent=2) + "\n"
    raise ConfigError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")


def paper_text(cell: Cell) -> str:
    """The report's number, and where ours lie against it once there is a figure of ours."""
    where = cell.against_paper()
    return cell.paper if where is None else f"{cell.paper} ({where})"


def render_markdown(report: Report, compare_paper: bool = False) -> str:
    if report.any_protocol:
        scope = "of any protocol (a full-protocol group wins over a quick one)"
    else:
        scope = "on the report's protocol (quick runs left out: --any-protocol includes them)"
    lines = [
        "# Results",
        "",
        f"Each cell: the completed runs in `{report.runs_dir}` {scope}, repeats over seeds as "
        f"mean ± std (n seeds; n=2 of 3: a seed failed or is running); one run as its number; "
        f"{EMPTY} = no run.",
    ]
    if compare_paper:
        lines.append(
            "(paper): the report's number, and where ours lie against it: below, within "
            "(it is inside our [min, max]) or above."
        )
    for table in report.tables:
        lines += ["", f"## {table.spec.title}", ""] + _md_table(table, report, compare_paper)
    return "\n".join(lines) + "\n"


def _md_table(table, report: Report, compare_paper: bool) -> list[str]:
    spec = table.spec
    header = list(spec.key_columns)
    for col in spec.columns:
        header += [col.name, f"{col.name} (paper)"] if compare_paper else [col.name]
    header += ["RUN"] + (["PROTOCOL"] if report.any_protocol else [])
    lines = [_md_line(header), _md_line(["---"] * len(header))]
    others = 0
    for row in table.rows:
        cells = list(row.keys)
        for cell in row.cells:
            cells += [cell.text()] + ([paper_text(cell)] if compare_paper else [])
            others += cell.other_groups > 0
        cells.append(joined_text([r for c in row.cells for r in cell_runs(c)]))
        if report.any_protocol:
            cells.append(joined_text([c.protocol for c in row.cells]))
        lines.append(_md_line(cells))
    if others:
        lines += [
            "",
            f"{others} cell(s) have other matching runs not shown (another precision or config): "
            "`--format json` counts them as other_groups.",
        ]
    return lines


def _md_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


CSV_FIELDS = ("table", "row", "column", "value", "run", "protocol")
CSV_SPREAD_FIELDS = ("std", "n", "of", "low", "high", "precision", "runs", "seeds")


def render_csv(report: Report, compare_paper: bool = False) -> str:
    """One line per cell (long format): every table fits under one header. The fields from
    before seeds come first, in their old order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    paper = ["paper"] if compare_paper else []
    writer.writerow([*CSV_FIELDS, *paper, *CSV_SPREAD_FIELDS, "other_groups"] + _vs(compare_paper))
    for table in report.tables:
        for row in table.rows:
            for col, cell in zip(table.spec.columns, row.cells, strict=True):
                line = [table.spec.key, row.label(table.spec.key_columns), col.name]
                line += [_number(cell.value), cell.run_id or "", cell.protocol or ""]
                line += [cell.paper] if compare_paper else []
                line += _csv_spread(cell) + [str(cell.other_groups)]
                line += [cell.against_paper() or ""] if compare_paper else []
                writer.writerow(line)
    return buf.getvalue()


def _vs(compare_paper: bool) -> list[str]:
    return ["vs_paper"] if compare_paper else []


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _csv_spread(cell: Cell) -> list[str]:
    s, done = cell.spread, cell.completed
    return [
        _number(s.std),
        str(s.n),
        str(cell.expected),
        _number(s.low),
        _number(s.high),
        cell.precision or "",
        " ".join(r.run_id for r in done),
        " ".join(str(r.seed) for r in done),
    ]


def cell_dict(cell: Cell, compare_paper: bool = False) -> dict[str, Any]:
    s = cell.spread
    out: dict[str, Any] = {"value": cell.value, "run": cell.run_id, "protocol": cell.protocol}
    if compare_paper:
        out["paper"] = float(cell.paper)
        out["vs_paper"] = cell.against_paper()
    out |= {"std": s.std, "n": s.n, "of": cell.expected, "low": s.low, "high": s.high}
    out["precision"] = cell.precision
    out["other_groups"] = cell.other_groups
    out["runs"] = [
        {"run": r.run_id, "seed": r.seed, "status": r.status, "value": r.value} for r in cell.runs
    ]
    return out


def report_dict(report: Report, compare_paper: bool = False) -> dict[str, Any]:
    tables = []
    for table in report.tables:
        spec = table.spec
        rows = []
        for row in table.rows:
            cells = {
                col.name: cell_dict(cell, compare_paper)
                for col, cell in zip(spec.columns, row.cells, strict=True)
            }
            keys = dict(zip(spec.key_columns, row.keys, strict=True))
            rows.append({"label": row.label(spec.key_columns), "keys": keys, "cells": cells})
        tables.append({"key": spec.key, "title": spec.title, "rows": rows})
    return {
        "runs_dir": str(report.runs_dir),
        "protocol": "any" if report.any_protocol else FULL,
        "tables": tables,
    }
