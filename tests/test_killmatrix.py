"""``chat-harness mutants``: real runs, a killed mutant, a survivor, the files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_matrix_names_killers_and_survivors(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "mutants", "scenarios/stream/stream-newlines-kept.yaml",
         "--only", "stream-loses-newlines", "--only", "order-by-storage",
         "--reports", str(reports), "--db", "embedded"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a survivor fails the matrix
    doc = json.loads((reports / "mutants.json").read_text())
    rows = {r["mutant"]: r for r in doc["rows"]}
    assert list(rows) == ["(none)", "stream-loses-newlines", "order-by-storage"]
    assert rows["(none)"]["ok"] and rows["(none)"]["passed"] == 1
    killed = rows["stream-loses-newlines"]
    assert killed["killed"] and killed["killers"][0]["scenario"] == "stream-newlines-kept"
    assert "stream" in killed["killers"][0]["checks"]
    assert "C-STREAM-1" in killed["killers"][0]["clauses"]
    assert not rows["order-by-storage"]["killed"] and not doc["ok"]
    table = (reports / "mutants.md").read_text()
    assert "| `order-by-storage` | **NO** | SURVIVED" in table
    assert "The matrix FAILS: 1 of 2 mutants killed" in table
    assert "SURVIVED" in proc.stdout
    # each run kept its own log and results
    assert (reports / "mutants" / "baseline" / "results.json").is_file()
    assert (reports / "mutants" / "order-by-storage" / "run.log").is_file()


def test_unknown_mutant_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "mutants", "--only", "no-such-bug",
         "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "Unknown mutant(s) 'no-such-bug'" in proc.stderr and "Traceback" not in proc.stderr
