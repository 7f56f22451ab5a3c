"""What a load did and what its audit found: samples, the report, its rendering.

A :class:`Sample` is one request of the load phase; :class:`LoadReport` gathers
them with the audit's counts and problems, and renders the lines that
``chat-harness load`` prints. Throughput and latency are shown, never judged:
they depend on the machine. Only problems make a load fail.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

MAX_SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class Sample:
    """One request of the load phase."""

    kind: str  # chat, sync
    status: int  # 0: no answer
    elapsed_ms: float
    expected_5xx: bool = False  # the script made the backend answer 5xx on purpose
    error: str | None = None


@dataclass
class LoadReport:
    """What the load did and what the audit found."""

    clients: int
    turns: int
    target: str
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    stored: int = 0  # messages in the database after the run
    expected: int = 0  # messages the clients hold
    lost: int = 0
    duplicated: int = 0
    stats_exact: int = 0  # sessions whose stats are exact
    twin_posts: int = 0  # new ids posted at once by two clients of one user
    twin_exact: int = 0  # ... stored once, in their session
    sessions: int = 0
    planned_left: int = 0  # provider answers planned and never asked for
    db_checked: bool = True
    refused: tuple[str, str] | None = None  # why the backend refused the load, what to check

    @property
    def unexpected_5xx(self) -> int:
        return sum(1 for s in self.samples if s.status >= 500 and not s.expected_5xx)

    @property
    def ok(self) -> bool:
        return not self.problems and self.refused is None

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.wall_s if self.wall_s else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the latencies, nearest rank."""
        values = sorted(s.elapsed_ms for s in self.samples)
        if not values:
            return 0.0
        return values[max(1, math.ceil(len(values) * q / 100)) - 1]

    def render(self) -> str:
        """The summary, the first problems, and ``load: OK`` or ``load: FAILED (N problems)``
        (``load: NOT TESTED`` when the backend refused it)."""
        if self.refused is not None:  # its problems are the refusal's, not findings
            return "\n".join([*self._summary(), "load: NOT TESTED: the backend refused it "
                              f"({len(self.problems)} problems that follow from that not shown)"])
        lines = self._summary() + self._problem_lines()
        lines.append("load: OK" if self.ok else f"load: FAILED ({len(self.problems)} problems)")
        return "\n".join(lines)

    def _summary(self) -> list[str]:
        by_kind = Counter(s.kind for s in self.samples)
        scripted = sum(1 for s in self.samples if s.expected_5xx)
        return [
            f"load: {self.clients} clients x {self.turns} turns against {self.target}: "
            f"{len(self.samples)} requests in {self.wall_s:.2f} s",
            f"  throughput {self.throughput:.0f} requests/s; latency p50 "
            f"{self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms "
            f"({', '.join(f'{n} {k}' for k, n in sorted(by_kind.items()))})",
            f"  stored {self.stored} of {self.expected} messages: {self.lost} lost, "
            f"{self.duplicated} duplicated" + ("" if self.db_checked else
                                               " (API only: no database access)"),
            f"  duplicate first posts (a new id posted at once by two clients of one user): "
            f"{self.twin_exact} of {self.twin_posts} stored once, in their session",
            f"  5xx: {self.unexpected_5xx} unexpected ({scripted} scripted 502s passed on)",
            f"  stats exact for {self.stats_exact} of {self.sessions} sessions; "
            f"provider answers planned but not asked for: {self.planned_left}",
        ]

    def _problem_lines(self) -> list[str]:
        shown = self.problems[:MAX_SHOWN_PROBLEMS]
        lines = [f"  problem: {p}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more problems")
        return lines
