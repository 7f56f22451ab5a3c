"""``chat-harness bench`` / ``python -m bench``: the figures, a table, ``reports/bench.json``.

Numbers, not timed tests: nothing here fails because a figure is slow. Each
figure says what it measured, against which floor, and whether its target is
met; the exit code is 1 only when a figure could not be measured at all.

    chat-harness bench                  # every figure (a few minutes on 2 cores)
    chat-harness bench --quick          # fewer repeats, for a smoke run
    chat-harness bench --only pg --only isolation

Writes ``reports/bench.json`` (every sample) and ``reports/bench.md`` (the table).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Context, Row, judge, machine, ratio_rows

FORMAT = "chat-harness-bench/1"

# name -> (module, function, title); in the order the table shows them
FIGURES: dict[str, tuple[str, str, str]] = {
    "pg": ("bench.pg_ready", "measure_ready", "PostgreSQL ready"),
    "restore": ("bench.pg_ready", "measure_restore", "warm cache: how an entry is copied"),
    "isolation": ("bench.isolation", "measure", "per-scenario isolation"),
    "step": ("bench.step", "measure", "per step: the harness over the raw HTTP calls"),
    "startup": ("bench.suite", "measure_startup", "start-up: one seed scenario, whole process"),
    "timeout": ("bench.inproc", "measure_timeout", "a provider timeout, in-process"),
    "autoload": ("bench.inproc", "measure_autoload",
                 "the pytest plugin in a session that collects no scenario"),
    "suite": ("bench.suite", "measure_suite", "whole suite, whole process"),
    "tavern": ("bench.vs_tavern", "measure", "against Tavern: one 3-request flow, per test"),
    "request": ("bench.blackbox", "measure_request", "black box, per request: over bare httpx"),
    "parallel": ("bench.blackbox", "measure_parallel", "whole suite: black box, -n 2, serial"),
    "pytest": ("bench.blackbox", "measure_pytest", "the project's own pytest, wall time"),
}


@dataclass
class FigureResult:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "rows": [r.to_json() for r in self.rows],
                "notes": self.notes, "error": self.error, "seconds": round(self.seconds, 1)}


def run_figure(name: str, ctx: Context) -> FigureResult:
    module, function, title = FIGURES[name]
    result = FigureResult(name=name, title=title)
    began = time.perf_counter()
    try:
        measure: Callable[[Context], tuple[list[Row], list[str]]] = getattr(
            importlib.import_module(module), function)
        result.rows, result.notes = measure(ctx)
        ratio_rows(result.rows)
        for row in result.rows:
            judge(row)
    except Exception as exc:  # a figure that cannot be measured is reported, not fatal
        result.error = f"{type(exc).__name__}: {exc}"
        ctx.log(traceback.format_exc())
    result.seconds = time.perf_counter() - began
    return result


def show(seconds: float | None, unit: str = "s") -> str:
    if seconds is None:
        return "-"
    if unit == "×":  # a ratio of its own (not against a floor row)
        return f"{seconds:.2f}×"
    if unit == "ms" or seconds < 0.1:
        ms = seconds * 1000
        return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"
    return f"{seconds:.2f} s"


def print_table(results: Sequence[FigureResult], info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"chat-harness bench ({info['nproc']} cores, {info['cpu']}, "
                  f"{info['ram_gib']} GiB; medians)", show_lines=False)
    for column in ("figure", "what", "median", "runs", "× floor", "floor", "target", "met"):
        narrow = column == "floor"  # the floor's own row says it in full
        table.add_column(column, justify="right" if column in ("median", "runs", "× floor")
                         else "left", max_width=30 if narrow else None, no_wrap=narrow,
                         overflow="ellipsis" if narrow else "fold")
    for result in results:
        if result.error:
            first = result.error.splitlines()[0][:150]
            table.add_row(result.name, f"[red]not measured: {escape(first)}[/red] "
                          "(bench.json has the whole error)", "", "", "", "", "", "")
        for row in result.rows:
            met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: ""}[row.met]
            table.add_row(result.name, row.name + (f" ({row.note})" if row.note else ""),
                          show(row.median, row.unit), str(len(row.samples)),
                          f"{row.ratio:.2f}×" if row.ratio is not None else "",
                          row.floor or "", row.target or "", met)
    console.print(table)
    for result in results:
        for note in result.notes:
            console.print(f"[bold]{result.name}[/bold]: {note}", highlight=False)
    for result, row in missed(results):
        console.print(f"[bold]{result.name}[/bold]: [red]not met[/red], {escape(row.name)} "
                      f"({row.target}): {escape(row.gap or 'no cause measured')}",
                      highlight=False)


def missed(results: Sequence[FigureResult]) -> list[tuple[FigureResult, Row]]:
    """Every row whose target is not met, with the figure it belongs to."""
    return [(result, row) for result in results for row in result.rows if row.met is False]


def write_json(results: Sequence[FigureResult], info: dict[str, Any], path: Path,
               *, quick: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "machine": info,
        "figures": {r.name: r.to_json() for r in results},
    }
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def markdown(results: Sequence[FigureResult], info: dict[str, Any]) -> str:
    """The table as Markdown (``reports/bench.md``), for the README's "Speed" section."""
    load = info["load_1min_at_start"]
    lines = [f"Machine: {info['nproc']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM, "
             f"Python {info['python']}; load average "
             f"{'unknown' if load is None else f'{load:.1f}'} at the "
             "start (a shared machine: medians, and ratios against floors of the same run).",
             "", "| figure | what | median | runs | × floor | target | met |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    for result in results:
        if result.error:
            lines.append(f"| {result.name} | not measured: "
                         f"{result.error.splitlines()[0][:120]} | | | | | |")
        for row in result.rows:
            met = {True: "yes", False: "**no**", None: ""}[row.met]
            ratio = f"{row.ratio:.2f}× {row.floor}" if row.ratio is not None else ""
            lines.append(f"| {result.name} | {row.name} | {show(row.median, row.unit)} | "
                         f"{len(row.samples)} | {ratio} | {row.target or ''} | {met} |")
    gaps = missed(results)
    if gaps:
        lines += ["", "Targets not met, and their causes as this run measured them:", ""]
        lines += [f"- {result.name}, {row.name} ({row.target}): "
                  f"{row.gap or 'no cause measured'}" for result, row in gaps]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chat-harness bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        choices=sorted(FIGURES), help="just this figure (repeatable): "
                        + ", ".join(FIGURES))
    parser.add_argument("--reports", default="reports", metavar="DIR",
                        help="bench.json goes there (default: reports)")


def run(*, quick: bool = False, only: Sequence[str] | None = None,
        reports: str | Path = "reports", log: Callable[[str], None] = print) -> int:
    unknown = sorted(set(only or ()) - set(FIGURES))
    if unknown:
        log(f"bench: no figure {', '.join(unknown)}; the figures: {', '.join(FIGURES)}")
        return 2
    names = [n for n in FIGURES if not only or n in only]
    info = machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="chat-harness-bench-") as tmp:
        ctx = Context(quick=quick, workdir=Path(tmp), log=log)
        for name in names:
            log(f"bench: {name} ({FIGURES[name][2]}) ...")
            results.append(run_figure(name, ctx))
    print_table(results, info)
    path = write_json(results, info, Path(reports) / "bench.json", quick=quick)
    (Path(reports) / "bench.md").write_text(markdown(results, info), encoding="utf-8")
    log(f"bench: {path} (and bench.md)")
    return 1 if any(r.error for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(quick=args.quick, only=args.only, reports=args.reports)


__all__ = ["FIGURES", "FORMAT", "add_arguments", "main", "run"]
