"""The kill matrix: the suite against the correct backend, each mutant and each benign variant.

A conformance suite is only as good as the bugs it catches, and as the correct
backends it lets through. Each run is a real ``chat-harness run`` in its own
process (its own PostgreSQL, its own reports folder), several at once; the
matrix is read back from each run's ``results.json``. The matrix holds when the
correct backend passes every scenario, every mutant fails at least one, and
every benign variant (an answer the contract allows, harness/reference/variants.py)
passes every scenario: a variant's failures are false alarms of the harness.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.processes import Child, stop_all

BASELINE = "(none)"  # the row of the correct backend
MESSAGE_LIMIT = 300  # characters of each failure message kept in the matrix
# failures that say nothing of the backend: they kill no mutant
NOT_FINDINGS = frozenset({"harness_error", "scenario_error", "collection"})


# What each mutant breaks: the checks that own its clauses, and the clauses. A mutant
# counts as killed only when one of its failures comes from such a check under such a
# clause: a mutant that only a neighbouring check catches shows a check that may not work.
OWNERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    name: (frozenset(checks), frozenset(clauses)) for name, checks, clauses in (
        ("request-id-first-match", ["pairing"], ["C-CHAT-2"]),
        ("request-id-first-message", ["pairing"], ["C-CHAT-2"]),
        ("insert-not-upsert", ["sync", "idempotent"], ["C-MSG-2"]),
        ("retry-not-updated", ["expect"], ["C-MSG-5"]),
        ("server-timestamp", ["lost"], ["C-MSG-4"]),
        ("order-by-storage", ["order", "rows"], ["C-MSG-9"]),
        ("batch-not-atomic", ["expect"], ["C-MSG-3", "C-AUTH-3"]),
        ("context-keeps-failed", ["context"], ["C-CHAT-3"]),
        ("rate-limit-as-502", ["outcome"], ["C-CHAT-5"]),
        ("foreign-session-readable", ["expect"], ["C-AUTH-2"]),
        ("stream-loses-newlines", ["stream"], ["C-STREAM-1"]),
        ("since-ts-inclusive", ["expect"], ["C-MSG-9"]),
        ("retry-after-ignored", ["outcome"], ["C-CHAT-5"]),
        ("retries-client-errors", ["provider_script", "outcome"], ["C-CHAT-3", "C-CHAT-5"]),
        ("stats-not-updated-on-upsert", ["expect"], ["C-MSG-7"]),
        ("foreign-session-writable", ["expect"], ["C-AUTH-2"]),
        ("framework-error-body", ["envelope"], ["C-ERR-1", "C-ERR-2"]),
        ("pairing-off-by-one", ["pairing", "lost"], ["C-MSG-10"]),
        ("provider-gets-metadata", ["context"], ["C-CHAT-3"]),
        ("elapsed-ms-float", ["schema"], ["C-CHAT-4"]),
        ("leaky-500", ["server_error"], ["C-ERR-3"]),
        # race mutants: only concurrent requests show them (scenarios/races/)
        ("check-then-insert", ["expect", "sync"], ["C-MSG-2"]),
        ("stats-read-modify-write", ["expect", "stats"], ["C-MSG-7"]),
        ("session-select-then-insert", ["expect", "sync"], ["C-SES-2", "C-MSG-6"]),
        ("stats-own-transaction", ["expect", "stats"], ["C-MSG-7"]),
        ("unlocked-check-then-insert", ["expect", "sync", "server_error"],
         ["C-MSG-2", "C-MSG-8", "C-ERR-3"]),
    )
}


@dataclass
class Killer:
    """A scenario that failed on the mutant (or, on a benign variant, a false alarm), and how."""

    scenario: str
    checks: list[str]
    clauses: list[str]
    messages: list[str] = field(default_factory=list)  # "[check/clause] message", cut
    pairs: list[tuple[str, str | None]] = field(default_factory=list)  # (check, clause)


@dataclass
class Row:
    mutant: str  # BASELINE for the correct backend; a mutant's or a variant's name
    description: str
    exit_code: int
    duration_s: float
    killers: list[Killer] = field(default_factory=list)
    passed: int = 0
    skipped: int = 0
    error: str | None = None  # the run could not judge (exit code not 0/1)
    log: str = ""
    benign: bool = False  # a benign variant: must pass like the baseline

    @property
    def kind(self) -> str:
        return "baseline" if self.mutant == BASELINE else "variant" if self.benign else "mutant"

    @property
    def killed(self) -> bool:
        return self.error is None and bool(self.killers)

    @property
    def by_owner(self) -> bool:
        """Killed by a check that owns a clause the mutant breaks (OWNERS)."""
        if self.mutant not in OWNERS:
            return self.killed  # a mutant nobody declared: any kill counts
        checks, clauses = OWNERS[self.mutant]
        return self.killed and any(check in checks and clause in clauses
                                   for k in self.killers for check, clause in k.pairs)

    @property
    def ok(self) -> bool:
        """The baseline and every benign variant pass everything; a mutant is killed by
        the check that owns its clause."""
        if self.mutant == BASELINE or self.benign:
            return self.error is None and self.exit_code == 0 and not self.killers
        return self.by_owner


@dataclass
class Matrix:
    rows: list[Row]
    paths: list[str]
    jobs: int
    wall_s: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def mutants(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "mutant"]

    @property
    def variants(self) -> list[Row]:
        return [r for r in self.rows if r.benign]

    def verdict(self) -> str:
        """"holds: 17 of 17 mutants killed, 28 of 28 benign variants pass" (or FAILS: ...)."""
        parts = []
        if self.mutants or not self.variants:
            parts.append(f"{sum(r.by_owner for r in self.mutants)} of {len(self.mutants)} "
                         "mutants killed by the check that owns their clause")
        if self.variants:
            parts.append(f"{sum(r.ok for r in self.variants)} of {len(self.variants)} benign "
                         "variants pass")
        return f"{'holds' if self.ok else 'FAILS'}: " + ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "chat-harness-mutants/1", "paths": self.paths, "jobs": self.jobs,
            "wall_s": round(self.wall_s, 2), "ok": self.ok,
            "rows": [{**asdict(r), "kind": r.kind, "killed": r.killed,
                      "by_owner": r.by_owner, "ok": r.ok}
                     for r in self.rows],
        }


def _command(paths: Sequence[str], name: str, reports: Path, extra: Sequence[str], *,
             benign: bool = False) -> list[str]:
    from harness.options import RUN, options_of, to_argv
    from harness.reference.variants import variant_parts

    values: dict[str, Any] = {"reports": str(reports)}
    if name != BASELINE:
        values["variant" if benign else "mutant"] = variant_parts(name) if benign else [name]
    return [sys.executable, "-m", "harness", "run", *paths, *to_argv(values, options_of(RUN)),
            "-q", "-p", "no:cacheprovider", *extra]


class _Runner:
    """Starts the runs and keeps every child in hand, also on Ctrl-C.

    Each run is a :class:`~harness.processes.Child` (own session, under the guard:
    started from a worker thread, it goes with a matrix killed outright).
    """

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stopping = False
        self._lock = threading.Lock()

    def run(self, argv: list[str], log: Path) -> int:
        with self._lock:  # stop_all sees every child started, and none starts after it
            if self.stopping:
                raise KeyboardInterrupt
            child = Child(argv, log=log, what=f"the run {' '.join(argv[3:])}")
            self.children.append(child)
        return child.wait()

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            stop_all(self.children, timeout_s=15)


def _row(mutant: str, description: str, code: int, took: float, folder: Path, log: Path, *,
         benign: bool = False) -> Row:
    row = Row(mutant=mutant, description=description, exit_code=code, duration_s=took,
              log=str(log), benign=benign)
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
            messages = [_cut(f"[{f.get('check')}/{f.get('clause')}] {f.get('message')}")
                        for f in rec.get("failures") or []]
            pairs = [(str(f.get("check")), f.get("clause")) for f in rec.get("failures") or []]
            row.killers.append(Killer(rec["scenario_id"], rec["checks_failed"],
                                      rec["clauses_broken"], messages, pairs))
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


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 3] + "..."


def split_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``--only`` names as (mutants, variants); InvalidInput for a name that is neither."""
    from harness.errors import InvalidInput
    from harness.reference.mutants import MUTANTS
    from harness.reference.variants import VARIANTS

    unknown = [n for n in names if n not in MUTANTS and not _variants(n)]
    if unknown:
        raise InvalidInput(
            f"Unknown mutant(s) {', '.join(map(repr, unknown))}. Hint: mutants are "
            f"{', '.join(sorted(MUTANTS))}; benign variants are {', '.join(sorted(VARIANTS))}")
    return [n for n in names if n in MUTANTS], [n for n in names if n not in MUTANTS]


def _variants(name: str) -> bool:
    """A benign variant's name, or several joined by ``+`` (one backend with all of them)."""
    from harness.reference.variants import VARIANTS, variant_parts

    return all(part in VARIANTS for part in variant_parts(name))


def run_matrix(paths: Sequence[str], *, mutants: Sequence[str] | None = None,
               variants: Sequence[str] | None = None, jobs: int | None = None,
               reports: Path = Path("reports"), extra: Sequence[str] = ()) -> Matrix:
    """Run the baseline, each mutant, then each benign variant, ``jobs`` at a time
    (None: every known one; an empty list: none)."""
    from harness.reference.mutants import MUTANTS, check_mutant_names
    from harness.reference.variants import (
        VARIANTS,
        check_variant_names,
        describe_variant,
        folder_name,
    )

    names = sorted(MUTANTS) if mutants is None else list(mutants)
    benign = sorted(VARIANTS) if variants is None else list(variants)
    check_mutant_names(names)
    check_variant_names(benign)
    runs = [(BASELINE, False)] + [(n, False) for n in names] + [(n, True) for n in benign]
    jobs = jobs or max(1, min(len(runs), os.cpu_count() or 1))
    root = reports / "mutants"
    root.mkdir(parents=True, exist_ok=True)
    runner = _Runner()
    began = time.monotonic()

    def one(run: tuple[str, bool]) -> Row:
        name, is_variant = run
        folder = (root / "baseline" if name == BASELINE
                  else root / "variants" / folder_name(name) if is_variant else root / name)
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "run.log"
        started = time.monotonic()
        code = runner.run(_command(paths, name, folder, extra, benign=is_variant), log)
        description = ("the correct reference backend" if name == BASELINE
                       else describe_variant(name) if is_variant else MUTANTS[name])
        return _row(name, description, code, time.monotonic() - started, folder, log,
                    benign=is_variant)

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        rows = list(pool.map(one, runs))
    except BaseException:  # Ctrl-C: no run waits for its turn, the running ones are stopped
        pool.shutdown(wait=False, cancel_futures=True)
        runner.stop_all()
        raise
    finally:
        pool.shutdown(wait=True)
    return Matrix(rows=rows, paths=list(paths), jobs=jobs, wall_s=time.monotonic() - began)


def _killers_text(row: Row, limit: int = 3) -> str:
    if row.error:
        return row.error
    if row.mutant == BASELINE:
        return f"{row.passed} passed, {row.skipped} skipped" + (
            f", {len(row.killers)} FAILED: " + ", ".join(k.scenario for k in row.killers)
            if row.killers else "")
    if not row.killers:
        return (f"{row.passed} passed, {row.skipped} skipped" if row.benign
                else "SURVIVED: no scenario failed")
    names = [k.scenario for k in row.killers[:limit]]
    more = f" +{len(row.killers) - limit} more" if len(row.killers) > limit else ""
    prefix = f"{len(row.killers)} FAILED: " if row.benign else ""
    return prefix + ", ".join(names) + more


def _owners_text(row: Row) -> str:
    """The owning (check, clause) pairs that fired: ``pairing C-CHAT-2``."""
    if row.mutant not in OWNERS:
        return ""
    checks, clauses = OWNERS[row.mutant]
    fired = sorted({f"{check} {clause}" for k in row.killers for check, clause in k.pairs
                    if check in checks and clause in clauses})
    return ", ".join(fired)


def _checks_text(row: Row) -> str:
    return ", ".join(sorted({c for k in row.killers for c in k.checks}))


def _state(row: Row) -> str:
    if row.error:
        return "**ERROR**"  # the run could not judge
    if row.mutant == BASELINE:
        return "baseline"
    if row.benign:
        return "yes" if row.ok else "**FALSE ALARM**"
    return ("yes" if row.by_owner else "**only by other checks**" if row.killed
            else "**NO**")


def render_markdown(matrix: Matrix) -> str:
    """The matrix as Markdown tables (for reports/mutants.md and the docs), then each
    false alarm: the scenarios a benign variant failed, with the first failure of each."""
    lines = ["| mutant | killed | by the owning check | by scenarios | checks | time |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in matrix.rows:
        if not r.benign:
            lines.append(f"| `{r.mutant}` | {_state(r)} | {_owners_text(r)} | "
                         f"{_killers_text(r)} | {_checks_text(r)} | {r.duration_s:.1f} s |")
    if matrix.variants:
        lines += ["", "| benign variant | passes | scenarios | checks (false alarms) | time |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| `{r.mutant}` | {_state(r)} | {_killers_text(r)} | {_checks_text(r)} "
                  f"| {r.duration_s:.1f} s |" for r in matrix.variants]
    lines += ["", f"The matrix {matrix.verdict()}, {matrix.jobs} runs at a time, "
              f"{matrix.wall_s:.1f} s wall."]
    alarms = [r for r in matrix.variants if r.killers]
    if alarms:
        lines += ["", "## False alarms", "",
                  "Scenarios that failed on a benign variant (an answer the contract allows):"]
        for r in alarms:
            lines += ["", f"### `{r.mutant}`", "", r.description, ""]
            lines += [f"- `{k.scenario}` ({', '.join(k.clauses)}): "
                      + (k.messages[0] if k.messages else ", ".join(k.checks))
                      for k in r.killers]
    return "\n".join(lines) + "\n"


def print_table(matrix: Matrix) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="chat-harness kill matrix", show_lines=False)
    for col in ("mutant / benign variant", "killed / passes", "scenarios", "checks", "time"):
        table.add_column(col, overflow="fold")
    for r in matrix.rows:
        if r.benign and r is matrix.variants[0]:
            table.add_section()
        if r.error:
            state = "[red]ERROR[/]"
        elif r.mutant == BASELINE:
            state = "[green]baseline[/]" if r.ok else "[red]baseline FAILED[/]"
        elif r.benign:
            state = "[green]passes[/]" if r.ok else "[red]FALSE ALARM[/]"
        else:
            state = ("[green]yes[/]" if r.by_owner else
                     "[red]only by other checks[/]" if r.killed else "[red]NO[/]")
        table.add_row(r.mutant, state, _killers_text(r), _checks_text(r),
                      f"{r.duration_s:.1f} s")
    console = Console(width=max(120, Console().width))
    console.print(table)
    verdict = matrix.verdict().replace("holds", "[green]holds[/]", 1).replace(
        "FAILS", "[red]FAILS[/]", 1)
    console.print(f"matrix {verdict}, {matrix.wall_s:.1f} s wall, {matrix.jobs} at a time")


def write(matrix: Matrix, reports: Path) -> tuple[Path, Path]:
    reports.mkdir(parents=True, exist_ok=True)
    js, md = reports / "mutants.json", reports / "mutants.md"
    js.write_text(json.dumps(matrix.to_json(), indent=1) + "\n", encoding="utf-8")
    md.write_text("# Kill matrix\n\n" + render_markdown(matrix), encoding="utf-8")
    return js, md
