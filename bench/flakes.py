"""Flake hunt: the scenario suite N times in random order, outcomes compared with run 1.

A CI gate that fails now and then gets switched off, so a flaky scenario is a
bug of the harness (or of the backend) to find before CI does. Each run is a
real ``chat-harness run`` process (its own PostgreSQL, its own reports) with
pytest-randomly shuffling the scenarios under a seed of its own; a run whose
per-scenario outcomes differ from the first run's counts as a flake, with the
seed that reproduces its order::

    python bench/flakes.py                    # 20 runs of scenarios/
    python bench/flakes.py --runs 3           # the bounded CI version
    python bench/flakes.py scenarios/chat -- --target-cmd "python -m harness.reference"
    chat-harness run scenarios -p randomly -p no:cacheprovider --randomly-seed 1234  # rerun one

Exit code 0 when every run agrees with the first, 1 when one differs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Outcomes = dict[str, str]  # "file::scenario id" -> passed / failed / skipped


@dataclass
class Run:
    """One shuffled run: its seed, what each scenario came to, in which order."""

    seed: int
    code: int
    outcomes: Outcomes = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tail: str = ""  # the run's last output lines, for a run that produced no results


def differences(first: Outcomes, other: Outcomes) -> list[str]:
    """Every scenario whose outcome is not the same in both runs, one line each."""
    lines = []
    for key in sorted(set(first) | set(other)):
        a, b = first.get(key, "missing"), other.get(key, "missing")
        if a != b:
            lines.append(f"{key}: {a} in run 1, {b} here")
    return lines


def run_once(paths: list[str], seed: int, reports: Path, extra: list[str]) -> Run:
    """One ``chat-harness run`` in random order under ``seed``.

    A child of its own (:class:`harness.processes.Child`): on Ctrl-C it gets
    SIGTERM and the time to stop its PostgreSQL and remove its folders.
    """
    from harness.processes import Child

    argv = [sys.executable, "-m", "harness", "run", *paths, "--reports", str(reports),
            "-q", "-p", "no:cacheprovider", "-p", "randomly", f"--randomly-seed={seed}",
            *extra]
    began = time.monotonic()
    child = Child(argv, log=reports / "output.log", what="chat-harness run", cwd=ROOT)
    try:
        code = child.proc.wait()
    finally:
        child.stop()
    run = Run(seed=seed, code=code, seconds=time.monotonic() - began)
    results = reports / "results.json"
    if results.is_file():
        doc = json.loads(results.read_text(encoding="utf-8"))
        for record in doc["scenarios"]:
            key = f"{record['file']}::{record['scenario_id']}"
            run.outcomes[key] = record["outcome"]
            run.order.append(key)
    else:
        run.tail = child.log_tail(15)
    return run


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_in:  # what follows goes to every chat-harness run as is
        cut = args_in.index("--")
        args_in, extra = args_in[:cut], args_in[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["scenarios"])
    parser.add_argument("--runs", type=int, default=20, help="how many runs (default 20)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of run 1; run i uses seed+i-1 (default: a random one)")
    parser.add_argument("--db", default="embedded", help="--db of every run (default embedded)")
    args = parser.parse_args(args_in)
    if args.runs < 2:
        parser.error("--runs must be at least 2: a flake is a difference between runs")
    base = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    extra = ["--db", args.db, *extra]
    runs: list[Run] = []
    differing = 0
    with tempfile.TemporaryDirectory(prefix="chat-harness-flakes-") as tmp:
        for i in range(args.runs):
            run = run_once(args.paths, base + i, Path(tmp) / f"run-{i + 1}", extra)
            runs.append(run)
            counts = {o: list(run.outcomes.values()).count(o)
                      for o in ("passed", "failed", "skipped")}
            summary = ", ".join(f"{n} {o}" for o, n in counts.items() if n) or "no results"
            line = (f"run {i + 1:>2}/{args.runs}  seed {run.seed}  {summary}  "
                    f"({run.seconds:.1f} s)")
            if i == 0:
                print(line, flush=True)
                if not run.outcomes:
                    print(f"  run 1 produced no results (exit code {run.code}):\n{run.tail}")
                    return 1
                continue
            diff = differences(runs[0].outcomes, run.outcomes)
            shuffled = "order differs" if run.order != runs[0].order else "same order"
            print(f"{line}  {shuffled}  " + ("DIFFERS" if diff else "same outcomes"),
                  flush=True)
            if diff:
                differing += 1
                if not run.outcomes:  # the run itself broke: its last words say more
                    print(f"  no results (exit code {run.code}); the run's output ends:\n"
                          f"{run.tail}")
                for text in diff if run.outcomes else ():
                    print(f"  {text}")
    scenarios = len(runs[0].outcomes)
    print(f"flakes: {differing} of {args.runs - 1} runs differ from run 1 "
          f"({args.runs} runs of {scenarios} scenarios in random order, "
          f"seeds {base}..{base + args.runs - 1})")
    return 1 if differing else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the run under way has stopped (run_once): no traceback
        sys.exit(130)
