"""The kill matrix: the suite against the correct backend and against each mutant.

A conformance suite is only as good as the bugs it catches. Each run is a
real ``chat-harness run`` in its own process (its own PostgreSQL, its own
reports folder), several at once; the matrix is read back from each run's
``results.json``. The matrix holds when the correct backend passes every
scenario and every mutant fails at least one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BASELINE = "(none)"  # the row of the correct backend
# failures that say nothing of the backend: they kill no mutant
NOT_FINDINGS = frozenset({"harness_error", "scenario_error", "collection"})


@dataclass
class Killer:
    """A scenario that failed on the mutant, and how."""

    scenario: str
    checks: list[str]
    clauses: list[str]


@dataclass
class Row:
    mutant: str  # BASELINE for the correct backend
    description: str
    exit_code: int
    duration_s: float
    killers: list[Killer] = field(default_factory=list)
    passed: int = 0
    skipped: int = 0
    error: str | None = None  # the run could not judge (exit code not 0/1)
    log: str = ""

    @property
    def killed(self) -> bool:
        return self.error is None and bool(self.killers)

    @property
    def ok(self) -> bool:
        """The baseline passes everything; a mutant is killed."""
        if self.mutant == BASELINE:
            return self.error is None and self.exit_code == 0 and not self.killers
        return self.killed


@dataclass
class Matrix:
    rows: list[Row]
    paths: list[str]
    jobs: int
    wall_s: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "chat-harness-mutants/1", "paths": self.paths, "jobs": self.jobs,
            "wall_s": round(self.wall_s, 2), "ok": self.ok,
            "rows": [{**asdict(r), "killed": r.killed, "ok": r.ok} for r in self.rows],
        }


def _command(paths: Sequence[str], mutant: str, reports: Path, extra: Sequence[str]
             ) -> list[str]:
    argv = [sys.executable, "-m", "harness", "run", *paths, "--reports", str(reports),
            "-q", "-p", "no:cacheprovider", *extra]
    if mutant != BASELINE:
        argv += ["--mutant", mutant]
    return argv


class _Runner:
    """Starts the runs and keeps every child in hand, also on Ctrl-C."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def run(self, argv: list[str], log: Path) -> int:
        with log.open("wb") as out:
            child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            self.children.append(child)
            return child.wait()

    def stop_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def _row(mutant: str, description: str, code: int, took: float, folder: Path, log: Path
         ) -> Row:
    row = Row(mutant=mutant, description=description, exit_code=code, duration_s=took,
              log=str(log))
    results = folder / "results.json"
    if code not in (0, 1) or not results.is_file():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        row.error = f"the run ended with exit code {code}: " + " | ".join(tail)
        return row
    from harness.reporting.jsonfile import read

    doc = read(results)
    unjudged = []
    for rec in doc["scenarios"]:
        findings = set(rec["checks_failed"]) - NOT_FINDINGS
        if rec["outcome"] == "failed" and findings:
            row.killers.append(Killer(rec["scenario_id"], rec["checks_failed"],
                                      rec["clauses_broken"]))
        elif rec["outcome"] == "skipped":
            row.skipped += 1
        elif rec["outcome"] == "passed":
            row.passed += 1
        else:  # a harness or scenario error, a file that did not load, not run
            why = ", ".join(rec["checks_failed"]) or rec["outcome"]
            unjudged.append(f"{rec['scenario_id']} ({why})")
    if unjudged:
        row.error = f"{len(unjudged)} scenario(s) not judged: " + "; ".join(unjudged[:5])
    return row


def run_matrix(paths: Sequence[str], *, mutants: Sequence[str] | None = None,
               jobs: int | None = None, reports: Path = Path("reports"),
               extra: Sequence[str] = ()) -> Matrix:
    """Run the baseline and each mutant (all known ones by default), ``jobs`` at a time."""
    from harness.reference.mutants import MUTANTS, check_mutant_names

    names = list(mutants) if mutants else sorted(MUTANTS)
    check_mutant_names(names)
    jobs = jobs or max(1, min(len(names) + 1, os.cpu_count() or 1))
    root = reports / "mutants"
    root.mkdir(parents=True, exist_ok=True)
    runner = _Runner()
    began = time.monotonic()

    def one(name: str) -> Row:
        folder = root / ("baseline" if name == BASELINE else name)
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "run.log"
        started = time.monotonic()
        code = runner.run(_command(paths, name, folder, extra), log)
        description = "the correct reference backend" if name == BASELINE else MUTANTS[name]
        return _row(name, description, code, time.monotonic() - started, folder, log)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            rows = list(pool.map(one, [BASELINE, *names]))
    except BaseException:
        runner.stop_all()
        raise
    return Matrix(rows=rows, paths=list(paths), jobs=jobs, wall_s=time.monotonic() - began)


def _killers_text(row: Row, limit: int = 3) -> str:
    if row.error:
        return row.error
    if row.mutant == BASELINE:
        return f"{row.passed} passed, {row.skipped} skipped" + (
            f", {len(row.killers)} FAILED: " + ", ".join(k.scenario for k in row.killers)
            if row.killers else "")
    if not row.killers:
        return "SURVIVED: no scenario failed"
    names = [k.scenario for k in row.killers[:limit]]
    more = f" +{len(row.killers) - limit} more" if len(row.killers) > limit else ""
    return ", ".join(names) + more


def _checks_text(row: Row) -> str:
    return ", ".join(sorted({c for k in row.killers for c in k.checks}))


def render_markdown(matrix: Matrix) -> str:
    """The matrix as a Markdown table (for reports/mutants.md and the README)."""
    lines = ["| mutant | killed | by scenarios | checks | time |",
             "| --- | --- | --- | --- | --- |"]
    for r in matrix.rows:
        killed = "baseline" if r.mutant == BASELINE else ("yes" if r.killed else "**NO**")
        lines.append(f"| `{r.mutant}` | {killed} | {_killers_text(r)} | {_checks_text(r)} "
                     f"| {r.duration_s:.1f} s |")
    verdict = "holds" if matrix.ok else "FAILS"
    lines.append("")
    lines.append(f"The matrix {verdict}: {sum(r.killed for r in matrix.rows)} of "
                 f"{len(matrix.rows) - 1} mutants killed, {matrix.jobs} runs at a time, "
                 f"{matrix.wall_s:.1f} s wall.")
    return "\n".join(lines) + "\n"


def print_table(matrix: Matrix) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="chat-harness kill matrix", show_lines=False)
    for col in ("mutant", "killed", "by scenarios", "checks", "time"):
        table.add_column(col, overflow="fold")
    for r in matrix.rows:
        killed = ("[green]baseline[/]" if r.ok else "[red]baseline FAILED[/]") \
            if r.mutant == BASELINE else ("[green]yes[/]" if r.killed else "[red]NO[/]")
        table.add_row(r.mutant, killed, _killers_text(r), _checks_text(r),
                      f"{r.duration_s:.1f} s")
    console = Console(width=max(120, Console().width))
    console.print(table)
    verdict = "[green]holds[/]" if matrix.ok else "[red]FAILS[/]"
    console.print(f"matrix {verdict}: {sum(r.killed for r in matrix.rows)}/"
                  f"{len(matrix.rows) - 1} mutants killed, {matrix.wall_s:.1f} s wall, "
                  f"{matrix.jobs} at a time")


def write(matrix: Matrix, reports: Path) -> tuple[Path, Path]:
    reports.mkdir(parents=True, exist_ok=True)
    js, md = reports / "mutants.json", reports / "mutants.md"
    js.write_text(json.dumps(matrix.to_json(), indent=1) + "\n", encoding="utf-8")
    md.write_text("# Kill matrix\n\n" + render_markdown(matrix), encoding="utf-8")
    return js, md
