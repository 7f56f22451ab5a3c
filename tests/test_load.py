"""``chat-harness load``: concurrent clients, then an audit that can fail.

Bounded (10 clients): the invariants are asserted, never the timings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import load
from harness.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent


def _config(*mutants: str) -> RunConfig:
    return RunConfig(db="embedded", fixtures=ROOT / "fixtures", mutants=frozenset(mutants))


def test_concurrent_clients_lose_nothing_and_stats_are_exact() -> None:
    report = load.run_load(_config(), load.LoadOptions(clients=10, turns=5, seed=3))
    assert report.ok, report.render()
    assert report.expected == 10 * 5 * 2  # every turn ends with a stored pair
    assert report.stored == report.expected
    assert report.lost == 0 and report.duplicated == 0
    assert report.unexpected_5xx == 0
    assert report.stats_exact == report.sessions == 10
    assert report.planned_left == 0
    kinds = {s.kind for s in report.samples}
    assert kinds == {"chat", "sync"}
    # the script did make it fail: scripted 429s and 502s reached the clients
    statuses = {s.status for s in report.samples}
    assert {200, 201, 429, 502} <= statuses, statuses
    assert report.throughput > 0 and report.percentile(50) <= report.percentile(99)


def test_the_audit_catches_a_backend_that_loses_messages_under_duplicate_syncs() -> None:
    report = load.run_load(_config("insert-not-upsert"),
                           load.LoadOptions(clients=6, turns=4, seed=3))
    assert not report.ok
    assert report.unexpected_5xx > 0 and report.lost > 0, report.render()
    assert any("answered 500" in p for p in report.problems)


def test_the_audit_catches_answers_routed_to_the_wrong_client() -> None:
    """One shared provider queue: under concurrency clients get each other's answers."""
    report = load.run_load(_config(), load.LoadOptions(clients=6, turns=4, seed=3,
                                                       model="load/shared"))
    assert any("planned for it" in p for p in report.problems), report.render()


def test_the_command_prints_throughput_latency_and_the_audit(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "load", "--clients", "4", "--turns", "3",
         "--db", "embedded", "--target-cmd", f"{sys.executable} -m harness.reference",
         "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "requests/s" in out and "p50" in out and "p99" in out
    assert "stored 24 of 24 messages: 0 lost, 0 duplicated" in out
    assert "5xx: 0 unexpected" in out
    assert "stats exact for 4 of 4 sessions" in out
    assert out.rstrip().endswith("load: OK")
