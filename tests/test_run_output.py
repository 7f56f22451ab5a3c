"""`chat-harness run` as a user types it: which scenarios, how it is told, and `-n N`.

- a ``scenarios/`` folder in the current folder is what runs, whatever it holds;
  without one, the bundled contract suite runs, and the closing line says which;
- a failure shows the end of the backend's log (at most 20 lines) and where the
  whole of it is, not every traceback the backend logged;
- ``-n 2`` takes 2 as the number of workers, not as a scenario path.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from runs import ROOT, chat_harness, processes_of, run_env

from harness.config import bundled_scenarios

PASSING = "name: {name}\nmodel: m/free\nsteps:\n  - chat: hello\n    provider: {{reply: hi}}\n"
EMBEDDED = {"CHAT_HARNESS_DB": "embedded"}


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return chat_harness("run", *args, "-p", "no:cacheprovider", cwd=cwd, tmp=cwd / "tmp",
                        **EMBEDDED)


def _closing(out: str) -> str:
    return next(ln for ln in reversed(out.splitlines()) if ln.startswith("chat-harness: "))


def _own_scenarios(folder: Path, names: tuple[str, ...] = ("mine",)) -> None:
    (folder / "scenarios").mkdir(parents=True)
    for name in names:
        (folder / "scenarios" / f"{name}.yaml").write_text(PASSING.format(name=name))


def test_a_scenarios_folder_here_wins_over_the_bundled_suite(tmp_path: Path) -> None:
    _own_scenarios(tmp_path)  # no seed/ in it: it still is the user's suite
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "1 passed" in proc.stdout and "bundled" not in proc.stdout
    assert _closing(proc.stdout).startswith("chat-harness: 0 failed, 1 passed, 0 skipped")
    assert "; 1 scenario from ./scenarios; report: reports/report.html" in proc.stdout


def test_without_a_scenarios_folder_the_bundled_suite_runs_and_says_so(tmp_path: Path) -> None:
    bundled = bundled_scenarios()
    assert bundled is not None
    proc = _run(tmp_path, "-k", "replay-bug-report")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    where = f"the bundled contract suite ({bundled / 'seed'})"
    assert f"running the bundled contract suite ({bundled})" in proc.stdout
    assert f"; 1 scenario from {where}; report: reports/report.html" in _closing(proc.stdout)


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_failure_shows_the_end_of_the_backend_log_not_all_of_it(
        tmp_path: Path, workers: tuple[str, ...]) -> None:
    reports = tmp_path / "reports"
    # CI=1: on CI pytest does not trim the short summary; a failure is still told once
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "scenarios/seed", "--mutant",
         "request-id-first-match", "--mutant", "insert-not-upsert", "--reports", str(reports),
         "-p", "no:cacheprovider", *workers], cwd=ROOT,
        env=run_env(tmp_path / "tmp", CI="1", **EMBEDDED),
        capture_output=True, text=True, timeout=300)
    out = proc.stdout
    summary = out.split("short test summary info", 1)[1].splitlines()[1:-2]
    assert len(summary) == 3 and all(ln.startswith("FAILED ") for ln in summary), out
    assert proc.returncode == 1, out[-3000:] + proc.stderr
    assert "Captured log" not in out and "Traceback (most recent call last)" not in out
    heads = re.findall(r"the backend's log while this scenario ran, its last (\d+) lines "
                       r"\(all of it: (\S+)\):", out)
    assert len(heads) == 3, out  # each failing scenario saw a 500
    assert all(1 <= int(n) <= 20 for n, _ in heads)
    assert {Path(p).parent for _, p in heads} == {reports}
    shown = [ln for ln in out.splitlines() if ln.startswith("  | ")]
    assert len(shown) == sum(int(n) for n, _ in heads)
    assert any("UniqueViolation: duplicate key" in ln for ln in shown)  # the cause, at the end
    log = "".join(p.read_text() for p in reports.glob("target*.log"))
    assert log.count("Traceback (most recent call last)") >= 3  # all of it is in the file


def test_dash_n_takes_its_number(tmp_path: Path) -> None:
    _own_scenarios(tmp_path, ("a", "b", "c"))
    parallel = _run(tmp_path, "-n", "2")
    assert parallel.returncode == 0, parallel.stdout[-3000:] + parallel.stderr
    assert "2 workers" in parallel.stdout and "3 passed" in parallel.stdout
    black_box = _run(tmp_path, "-n", "2", "--target-cmd",
                     f"exec {sys.executable} -m harness.reference", "--reports", "bb")
    assert black_box.returncode == 0, black_box.stdout[-3000:] + black_box.stderr
    assert sorted(p.name for p in (tmp_path / "bb").glob("target*.log")) == [
        "target-gw0.log", "target-gw1.log"]
    assert not processes_of(tmp_path / "tmp")
