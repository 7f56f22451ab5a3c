"""``chat-harness mutants``: real runs, a killed mutant, a survivor, a benign variant, the
files written; and how the matrix judges its rows (a benign variant must pass everything)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.killmatrix import BASELINE, Killer, Matrix, Row, render_markdown, split_names

ROOT = Path(__file__).resolve().parent.parent


def test_matrix_names_killers_and_survivors(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "mutants", "scenarios/stream/stream-newlines-kept.yaml",
         "--only", "stream-loses-newlines", "--only", "order-by-storage", "--only", "gzip",
         "--reports", str(reports), "--db", "embedded"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a survivor fails the matrix
    doc = json.loads((reports / "mutants.json").read_text())
    rows = {r["mutant"]: r for r in doc["rows"]}
    assert list(rows) == ["(none)", "stream-loses-newlines", "order-by-storage", "gzip"]
    assert [r["kind"] for r in doc["rows"]] == ["baseline", "mutant", "mutant", "variant"]
    assert rows["gzip"]["ok"] and rows["gzip"]["passed"] == 1  # a benign variant passes
    assert rows["(none)"]["ok"] and rows["(none)"]["passed"] == 1
    killed = rows["stream-loses-newlines"]
    assert killed["killed"] and killed["killers"][0]["scenario"] == "stream-newlines-kept"
    assert "stream" in killed["killers"][0]["checks"]
    assert "C-STREAM-1" in killed["killers"][0]["clauses"]
    assert not rows["order-by-storage"]["killed"] and not doc["ok"]
    table = (reports / "mutants.md").read_text()
    assert "| `order-by-storage` | **NO** |  | SURVIVED" in table
    assert ("The matrix FAILS: 1 of 2 mutants killed by the check that owns their clause, "
            "1 of 1 benign variants pass") in table
    assert "| `gzip` | yes | 1 passed, 0 skipped |" in table
    assert "SURVIVED" in proc.stdout
    # each run kept its own log and results
    assert (reports / "mutants" / "baseline" / "results.json").is_file()
    assert (reports / "mutants" / "order-by-storage" / "run.log").is_file()
    assert (reports / "mutants" / "variants" / "gzip" / "results.json").is_file()


def test_unknown_mutant_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "mutants", "--only", "no-such-bug",
         "--reports", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "Unknown mutant(s) 'no-such-bug'" in proc.stderr and "Traceback" not in proc.stderr


# -- the matrix's judgement, over rows (no runs) ------------------------------------


def _row(name: str, *, benign: bool = False, failed: tuple[str, ...] = (),
         error: str | None = None, by: tuple[str, str] = ("schema", "C-SES-1")) -> Row:
    check, clause = by
    killers = [Killer(s, [check], [clause], [f"[{check}/{clause}] {s} broke"], [by])
               for s in failed]
    return Row(mutant=name, description=f"what {name} does", exit_code=1 if failed else 0,
               duration_s=1.0, killers=killers, passed=10 - len(failed), benign=benign,
               error=error)


def test_a_benign_variant_that_fails_a_scenario_fails_the_matrix() -> None:
    rows = [_row(BASELINE), _row("a-mutant", failed=("s1",)),
            _row("good-variant", benign=True), _row("bad-variant", benign=True,
                                                    failed=("s1", "s2"))]
    matrix = Matrix(rows=rows, paths=["scenarios"], jobs=2, wall_s=3.0)
    assert [r.ok for r in rows] == [True, True, True, False]
    assert not matrix.ok
    assert matrix.verdict() == ("FAILS: 1 of 1 mutants killed by the check that owns their "
                                "clause, 1 of 2 benign variants pass")
    doc = matrix.to_json()
    assert doc["ok"] is False
    assert [(r["kind"], r["ok"]) for r in doc["rows"]] == [
        ("baseline", True), ("mutant", True), ("variant", True), ("variant", False)]
    assert doc["rows"][3]["killers"][0]["messages"] == ["[schema/C-SES-1] s1 broke"]
    text = render_markdown(matrix)
    assert "| `bad-variant` | **FALSE ALARM** | 2 FAILED: s1, s2 | schema | 1.0 s |" in text
    assert "| `good-variant` | yes | 10 passed, 0 skipped |  | 1.0 s |" in text
    assert "### `bad-variant`" in text and "- `s2` (C-SES-1): [schema/C-SES-1] s2 broke" in text
    # without the bad variant it holds
    holds = Matrix(rows=rows[:3], paths=["scenarios"], jobs=2, wall_s=3.0)
    assert holds.ok and "False alarms" not in render_markdown(holds)
    assert holds.verdict() == ("holds: 1 of 1 mutants killed by the check that owns their "
                               "clause, 1 of 1 benign variants pass")


def test_a_benign_variant_is_judged_like_the_baseline() -> None:
    """Not killed is good for a variant: a run that could not judge is not."""
    assert _row("v", benign=True).ok and not _row("v", benign=True).killed
    broken = _row("v", benign=True, error="the run ended with exit code 3")
    assert not broken.ok
    matrix = Matrix(rows=[_row(BASELINE), broken], paths=["scenarios"], jobs=1, wall_s=1.0)
    assert "| `v` | **ERROR** | the run ended with exit code 3 |" in render_markdown(matrix)
    assert matrix.verdict() == "FAILS: 0 of 1 benign variants pass"
    assert not _row("m").ok  # a mutant that no scenario failed survived


def test_only_names_split_into_mutants_and_variants() -> None:
    assert split_names(["gzip", "order-by-storage", "reversed-keys"]) == (
        ["order-by-storage"], ["gzip", "reversed-keys"])
    with pytest.raises(ValueError, match=r"'typo'.*benign variants are"):
        split_names(["gzip", "typo"])
    # variants joined by + are one backend with all of them on
    assert split_names(["gzip+reversed-keys", "order-by-storage"]) == (
        ["order-by-storage"], ["gzip+reversed-keys"])
    with pytest.raises(ValueError, match=r"'gzip\+typo'"):
        split_names(["gzip+typo"])
    with pytest.raises(ValueError, match=r"'gzip\+order-by-storage'"):  # no mutant in one
        split_names(["gzip+order-by-storage"])


def test_a_composed_variant_is_one_run_with_each_of_its_variants(tmp_path: Path) -> None:
    from harness.killmatrix import _command
    from harness.reference.variants import VARIANTS, describe_variant, folder_name

    argv = _command(["scenarios"], "gzip+reversed-keys", tmp_path, [], benign=True)
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--variant"] == [
        "gzip", "reversed-keys"]
    assert describe_variant("gzip+reversed-keys") == (
        VARIANTS["gzip"] + "; and " + VARIANTS["reversed-keys"])
    everything = "+".join(sorted(VARIANTS))
    name = folder_name(everything)  # a file name has at most 255 bytes
    assert len(name) < 80 and name.startswith(sorted(VARIANTS)[0] + "+")
    assert folder_name(everything) == name != folder_name(everything + "+x")
    assert folder_name("gzip+reversed-keys") == "gzip+reversed-keys"


def test_every_mutant_declares_the_checks_and_clauses_it_breaks() -> None:
    from harness.contract.clauses import clause_ids
    from harness.killmatrix import OWNERS
    from harness.reference.mutants import MUTANTS
    from harness.result import Check

    assert OWNERS.keys() == MUTANTS.keys()
    known = {str(check) for check in Check} - {"custom", "scenario_error"}
    for name, (checks, clauses) in OWNERS.items():
        assert checks and checks <= known, name
        assert clauses and clauses <= set(clause_ids()), name


def test_a_mutant_only_a_neighbouring_check_catches_is_not_killed() -> None:
    """The seed mutant caught only by the order check (C-MSG-9) shows pairing (C-CHAT-2)
    may not work: the row fails the matrix."""
    neighbour = _row("request-id-first-match", failed=("s1",), by=("order", "C-MSG-9"))
    assert neighbour.killed and not neighbour.by_owner and not neighbour.ok
    owner = _row("request-id-first-match", failed=("s1",), by=("pairing", "C-CHAT-2"))
    assert owner.by_owner and owner.ok
    wrong_clause = _row("request-id-first-match", failed=("s1",), by=("pairing", "C-MSG-10"))
    assert not wrong_clause.ok  # the owning check, but under another clause
    matrix = Matrix(rows=[_row(BASELINE), neighbour], paths=["scenarios"], jobs=1, wall_s=1.0)
    assert not matrix.ok
    assert "| `request-id-first-match` | **only by other checks** |" in render_markdown(matrix)


def test_every_check_kills_a_mutant_or_a_held_case() -> None:
    """Each built-in check owns a mutant in the matrix, or has its own both-ways tests
    (tests/checks/test_<check>.py) that remove_each_check.py proves can fail."""
    from harness.killmatrix import OWNERS
    from harness.scenario.model import CHECKS

    owned = {check for checks, _ in OWNERS.values() for check in checks}
    held = {p.stem.removeprefix("test_") for p in (ROOT / "tests" / "checks").glob("test_*.py")}
    held = {"schema" if h == "schema_check" else "envelope" if h == "envelope" else h
            for h in held}
    for check in CHECKS:
        assert check in owned or check in held or (check == "rows" and "rows" in held), check
    assert {"pairing", "context", "lost", "idempotent", "schema", "server_error", "outcome",
            "provider_script", "envelope", "order"} <= owned


def test_the_variants_compose_into_two_backends_none_holding_a_pair_kept_apart() -> None:
    from harness.reference.variants import APART, VARIANTS, compositions, variant_parts

    composed = compositions(VARIANTS)
    assert len(composed) == 2
    parts = [variant_parts(name) for name in composed]
    assert sorted(p for group in parts for p in group) == sorted(VARIANTS)  # each once
    for group in parts:
        assert not [pair for pair in APART if pair <= set(group)]
    assert compositions(["gzip", "no-details", "other-details"]) == [
        "gzip+no-details", "other-details"]
    assert all(pair <= VARIANTS.keys() for pair in APART)  # no stale name
