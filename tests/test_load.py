"""``chat-harness load``: concurrent clients, then an audit that can fail.

Bounded (10 clients): the invariants are asserted, never the timings.
"""

from __future__ import annotations

import re
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
    assert report.twin_posts > 0 and report.twin_exact == report.twin_posts
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


def test_duplicate_first_posts_by_two_clients_of_one_user_catch_a_check_then_insert() -> None:
    """Two tabs of one user post a turn's new ids at once: a backend that stores by
    SELECT-then-INSERT without a lock answers one of them 500."""
    report = load.run_load(_config("unlocked-check-then-insert"),
                           load.LoadOptions(clients=6, turns=4, seed=3))
    assert not report.ok
    assert report.twin_posts > 0
    assert report.unexpected_5xx > 0, report.render()
    assert any("(twin) answered 500" in p for p in report.problems), report.render()


def test_the_audit_of_duplicate_first_posts_finds_an_id_stored_elsewhere() -> None:
    """An id of a duplicate first post that ended in another session (or nowhere) is a
    problem of its own, named as such."""
    from harness.load.audit import _check_twin_posts
    from harness.load.clients import Client
    from harness.load.report import LoadReport
    from harness.load.traffic import Traffic

    clients = [Client(i, 1, 1, "a-secret-of-32-bytes-at-least-000", "") for i in range(2)]
    traffic = Traffic(None, LoadReport(2, 1, "t"), 1.0)  # type: ignore[arg-type]
    traffic.twin_posts = {"m1": clients[0], "m2": clients[0], "m3": clients[1]}
    mine, theirs = clients[0].client.session_id, clients[1].client.session_id
    listed = {mine: ["m1", "m2"], theirs: ["m3", "m3"]}
    _check_twin_posts(traffic, listed, {"m1": [mine], "m2": [theirs], "m3": [theirs]})
    assert traffic.report.twin_posts == 3 and traffic.report.twin_exact == 1
    [elsewhere, twice] = traffic.report.problems
    assert f"m2, posted at once by two clients of its user: held by ['{theirs}']" in elsewhere
    assert "m3" in twice and "listed 2 times" in twice
    assert "duplicate first posts (a new id posted at once by two clients of one user): " \
        "1 of 3 stored once" in traffic.report.render()


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
    assert re.search(r"duplicate first posts \(.*\): (\d+) of \1 stored once", out), out


def test_duplicate_first_posts_over_real_sockets_catch_the_race(tmp_path: Path) -> None:
    """--target-cmd: the backend sees two connections at once, not an in-process queue."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "load", "--clients", "6", "--turns", "4", "--seed", "3",
         "--db", "embedded", "--target-cmd", f"{sys.executable} -m harness.reference",
         "--mutant", "unlocked-check-then-insert", "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "(twin) answered 500" in proc.stdout, proc.stdout
    assert "load: FAILED" in proc.stdout
