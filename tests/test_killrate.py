"""``chat-harness mutants --repeat N``: real repeated runs, and how a rate is judged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.killmatrix import BASELINE, Killer, Row
from harness.killrate import Rate, Rates, render_markdown

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = Path("scenarios/races/two-tabs-new-session.yaml")


def _row(name: str, *, caught: bool, benign: bool = False) -> Row:
    row = Row(mutant=name, description="", exit_code=1 if caught else 0, duration_s=1.0,
              benign=benign)
    if caught:
        row.killers.append(Killer("s", ["expect"], ["C-MSG-7"], ["m"], [("expect", "C-MSG-7")]))
    return row


def test_a_rate_counts_runs_and_holds_to_the_goal() -> None:
    mutant = Rate("stats-own-transaction", "mutant", "")
    mutant.rows = [_row("stats-own-transaction", caught=i != 0) for i in range(20)]
    assert (mutant.hits, mutant.runs, mutant.ok) == (19, 20, True)  # 19 of 20: the goal
    mutant.rows[1] = _row("stats-own-transaction", caught=False)
    assert (mutant.hits, mutant.ok) == (18, False)
    assert mutant.figure() == "caught in 18 of 20" and mutant.killers() == {"s": 18}
    variant = Rate("gzip", "variant", "")
    variant.rows = [_row("gzip", caught=False, benign=True) for _ in range(50)]
    assert variant.ok and variant.figure() == "passes in 50 of 50"
    variant.rows[7] = _row("gzip", caught=True, benign=True)  # one flaky run is a failure
    assert not variant.ok
    table = render_markdown(Rates([mutant, variant], 20, ["scenarios"], 2, 10.0))
    assert "| `stats-own-transaction` | mutant | caught in 18 of 20 **below the goal** | s (18) |" \
        in table
    assert "The goal FAILS" in table


def test_repeat_runs_each_backend_n_times(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "mutants", str(SCENARIO),
         "--only", "session-select-then-insert", "--only", "json-charset+gzip", "--repeat", "2",
         "-j", "2", "--reports", str(reports), "--db", "embedded"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((reports / "killrate.json").read_text())
    rates = {r["name"]: r for r in doc["rates"]}
    assert list(rates) == [BASELINE, "session-select-then-insert", "json-charset+gzip"]
    assert [(r["kind"], r["runs"], r["hits"]) for r in rates.values()] == [
        ("baseline", 2, 2), ("mutant", 2, 2), ("variant", 2, 2)]
    assert rates["session-select-then-insert"]["failed_scenarios"] == {
        "two-tabs-new-session": 2}
    assert "| `session-select-then-insert` | mutant | caught in 2 of 2 |" in proc.stdout
    assert (reports / "killrate" / "baseline" / "run-2" / "results.json").is_file()
    composed = json.loads((reports / "killrate" / "json-charset+gzip" / "run-1" / "results.json")
                          .read_text(encoding="utf-8"))
    assert sorted(composed["variants"]) == ["gzip", "json-charset"]  # one backend, both on


def test_repeat_takes_a_positive_count(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "mutants", "--repeat", "0", "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "--repeat" in proc.stderr and "Traceback" not in proc.stderr


def test_repeat_without_mutants_and_variants_counts_the_backends_own_passes(
        tmp_path: Path) -> None:
    """What a user's own backend gets from it: how many of N runs pass (flaky scenarios)."""
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "mutants", str(SCENARIO), "--repeat", "2",
         "--no-mutants", "--no-variants", "-j", "1", "--reports", str(reports),
         "--db", "embedded"],
        cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True,
        text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((reports / "killrate.json").read_text())
    assert [(r["name"], r["runs"], r["hits"]) for r in doc["rates"]] == [(BASELINE, 2, 2)]
