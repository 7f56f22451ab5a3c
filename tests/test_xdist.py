"""pytest-xdist: a database per worker on one shared server; results as in a serial run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runs import chat_harness

ROOT = Path(__file__).resolve().parent.parent


def _run(reports: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    proc = chat_harness("run", "scenarios/messages", "scenarios/seed", "--mutant",
                        "order-by-storage", "--db", "embedded", "--reports", str(reports),
                        "-p", "no:cacheprovider", *args, tmp=reports.parent / "tmp")
    doc = json.loads((reports / "results.json").read_text())
    return proc, {r["scenario_id"]: (r["outcome"], r["checks_failed"]) for r in doc["scenarios"]}


def test_parallel_run_matches_the_serial_one(tmp_path: Path) -> None:
    serial, serial_outcomes = _run(tmp_path / "serial")
    parallel, parallel_outcomes = _run(tmp_path / "parallel", "-n", "2")
    assert serial.returncode == parallel.returncode == 1  # the mutant is caught both ways
    assert parallel_outcomes == serial_outcomes
    assert any(outcome == "failed" for outcome, _ in serial_outcomes.values())
    assert "2 workers" in parallel.stdout
    # the controller still ends with the coverage line and the reports of all workers
    coverage = [line for line in parallel.stdout.splitlines() if line.startswith("coverage:")]
    assert coverage and coverage[0] == next(
        line for line in serial.stdout.splitlines() if line.startswith("coverage:"))
    assert (tmp_path / "parallel" / "report.html").is_file()


def _collected(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "scenarios", "--collect-only", "-q",
         "-p", "no:cacheprovider", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert collected, proc.stdout[-2000:]
    return collected


def test_shards_split_the_suite_without_overlap() -> None:
    whole = _collected()
    shares = [_collected("--shard", f"{i}/3") for i in (1, 2, 3)]
    assert len(whole) >= 50  # the whole suite, not a collection that broke
    assert sorted(t for share in shares for t in share) == sorted(whole)
    assert all(abs(len(s) - len(whole) / 3) < 1 for s in shares)


def test_a_bad_shard_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "scenarios", "--shard", "0/2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 4 and "--shard 0/2: expected I/N" in proc.stderr


def test_black_box_workers_each_start_a_backend_of_their_own(tmp_path: Path) -> None:
    """-n 2 --target-cmd: two backends, two logs, the serial run's outcomes."""
    reference = f"{sys.executable} -m harness.reference"
    serial, serial_outcomes = _run(tmp_path / "serial", "--target-cmd", reference)
    parallel, parallel_outcomes = _run(tmp_path / "parallel", "-n", "2",
                                       "--target-cmd", reference)
    assert serial.returncode == parallel.returncode == 1, parallel.stdout + parallel.stderr
    assert parallel_outcomes == serial_outcomes
    logs = sorted(p.name for p in (tmp_path / "parallel").glob("target*.log"))
    assert logs == ["target-gw0.log", "target-gw1.log"]
    for log in logs:  # each backend served requests
        assert "POST /api/chat" in (tmp_path / "parallel" / log).read_text()


def test_target_url_refuses_workers() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "scenarios/seed", "-n", "2",
         "--target-url", "http://127.0.0.1:9", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--target-url runs one backend" in proc.stderr
    assert "Traceback" not in proc.stderr
