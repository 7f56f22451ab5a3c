"""Which scenarios cover which contract clause, and which clauses none covers.

Scenarios name clause ids under ``covers:``; the contract
(:mod:`harness.contract.clauses`) lists every id. A clause that no scenario
covers is a hole in the suite, so the report names it; a ``covers:`` id that
the contract does not know is a typo that would hide such a hole, so it is a
:class:`~harness.errors.ScenarioError` (file, line, did-you-mean), never
silently ignored.

The report is data; :func:`render_coverage` and :func:`summary_line` turn it
into text for ``chat-harness coverage`` and the end-of-run line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.contract.clauses import Clause, UnknownClause, load_clauses, suggest  # noqa: F401 (their old home)
from harness.scenario.load import Scenario, discover, load_file


@dataclass(frozen=True)
class CoverageReport:
    """Per clause (in contract order) the ids of the scenarios that cover it."""

    clauses: tuple[Clause, ...]
    by_clause: dict[str, tuple[str, ...]]

    @property
    def uncovered(self) -> list[str]:
        """Clause ids that no scenario covers, in contract order."""
        return [c.id for c in self.clauses if not self.by_clause.get(c.id)]

    @property
    def covered_count(self) -> int:
        return len(self.clauses) - len(self.uncovered)

    @property
    def complete(self) -> bool:
        """True when every clause is covered and every named id exists (exit code 0)."""
        return not self.uncovered


def coverage_of(scenarios: Iterable[Scenario]) -> CoverageReport:
    """The report for already loaded scenarios (e.g. the items pytest collected).

    Loading a scenario already refused a ``covers:`` id that is no clause
    (:mod:`harness.scenario.lint`), so every id here is known.
    """
    clauses = load_clauses()
    by_clause: dict[str, list[str]] = {c.id: [] for c in clauses}
    for scenario in scenarios:
        for clause in dict.fromkeys(scenario.header.covers):  # listed twice: counted once
            if clause in by_clause:  # an invariant (I-...) is no clause of the contract
                by_clause[clause].append(scenario.id)
    return CoverageReport(
        clauses=tuple(clauses),
        by_clause={cid: tuple(ids) for cid, ids in by_clause.items()},
    )


def coverage(scenario_paths: list[Path]) -> CoverageReport:
    """Load the scenario files under ``scenario_paths`` and report their coverage.

    A broken scenario file raises its :class:`ScenarioError` (file, line,
    hint), as when running it: an unknown clause id among them.
    """
    scenarios: list[Scenario] = []
    for path in discover(scenario_paths):
        scenarios.extend(load_file(path))
    return coverage_of(scenarios)


def summary_line(report: CoverageReport) -> str:
    """One line: ``coverage: 12/32 clauses covered; uncovered: C-…, …``."""
    line = f"coverage: {report.covered_count}/{len(report.clauses)} clauses covered"
    if report.uncovered and len(report.uncovered) <= 8:
        line += f"; uncovered: {', '.join(report.uncovered)}"
    elif report.uncovered:
        line += (f"; {len(report.uncovered)} uncovered by the scenarios run "
                 "(chat-harness coverage -v lists them)")
    return line


def render_coverage(report: CoverageReport, *, verbose: bool) -> str:
    """A table (clause, title, scenarios; their ids when ``verbose``), then the summary."""
    header = ("clause", "title", "scenarios")
    rows = [(c.id, c.title, str(len(report.by_clause.get(c.id, ())))) for c in report.clauses]
    w_id = max([len(header[0])] + [len(r[0]) for r in rows])
    w_title = max([len(header[1])] + [len(r[1]) for r in rows])
    w_count = len(header[2])

    def line(cid: str, title: str, count: str, names: str = "") -> str:
        text = f"{cid:<{w_id}}  {title:<{w_title}}  {count:>{w_count}}"
        return f"{text}  {names}".rstrip() if names else text.rstrip()

    out = [line(*header, "names" if verbose else "")]
    for (cid, title, count), clause in zip(rows, report.clauses, strict=True):
        names = ", ".join(report.by_clause.get(clause.id, ())) if verbose else ""
        out.append(line(cid, title, count, names))
    out.append("")
    out.append(summary_line(report))
    return "\n".join(out)
