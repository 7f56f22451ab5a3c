"""Kill probability: how often one whole-suite run catches each mutant (``mutants --repeat N``).

A race mutant is caught only when a race scenario hits its window, so one kill
matrix says little: this runs the suite N times against the correct reference,
each mutant and each benign variant, and counts. A mutant's figure is the runs
in which the check that owns its clause failed (``OWNERS``); the reference's
and a variant's, the runs in which every scenario passed. Each run is a real
``chat-harness run`` in its own process, like the kill matrix's, under
``reports/killrate/NAME/run-I/``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.killmatrix import BASELINE, Row, _command, _row, _Runner

GOAL_CAUGHT = 0.95  # a mutant: caught in at least 19 of 20 runs
# the reference and the benign variants: every run passes


@dataclass
class Rate:
    name: str  # BASELINE, a mutant's or a variant's name
    kind: str  # "baseline", "mutant" or "variant"
    description: str
    rows: list[Row] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return len(self.rows)

    @property
    def hits(self) -> int:
        """A mutant: runs that caught it (by the owning check); else runs that passed."""
        if self.kind == "mutant":
            return sum(r.by_owner for r in self.rows)
        return sum(r.ok for r in self.rows)

    @property
    def errors(self) -> int:
        return sum(r.error is not None for r in self.rows)

    @property
    def ok(self) -> bool:
        if self.kind == "mutant":
            return self.hits >= math.ceil(GOAL_CAUGHT * self.runs)
        return self.hits == self.runs

    def killers(self) -> dict[str, int]:
        """Scenario → the number of runs it failed in."""
        counts: dict[str, int] = {}
        for row in self.rows:
            for k in row.killers:
                counts[k.scenario] = counts.get(k.scenario, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def figure(self) -> str:
        verb = "caught in" if self.kind == "mutant" else "passes in"
        return f"{verb} {self.hits} of {self.runs}"


@dataclass
class Rates:
    rates: list[Rate]
    repeat: int
    paths: list[str]
    jobs: int
    wall_s: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rates)

    def to_json(self) -> dict[str, Any]:
        return {"format": "chat-harness-killrate/1", "repeat": self.repeat, "paths": self.paths,
                "jobs": self.jobs, "wall_s": round(self.wall_s, 1), "ok": self.ok,
                "rates": [{"name": r.name, "kind": r.kind, "description": r.description,
                           "runs": r.runs, "hits": r.hits, "errors": r.errors, "ok": r.ok,
                           "failed_scenarios": r.killers()} for r in self.rates]}


def run_rates(paths: Sequence[str], *, mutants: Sequence[str], variants: Sequence[str],
              repeat: int, jobs: int = 1, reports: Path = Path("reports"),
              extra: Sequence[str] = ()) -> Rates:
    """The baseline, ``mutants`` and ``variants``, each ``repeat`` times, ``jobs`` at a time."""
    from harness.reference.mutants import MUTANTS, check_mutant_names
    from harness.reference.variants import (
        check_variant_names,
        describe_variant,
        folder_name,
    )

    check_mutant_names(mutants)
    check_variant_names(variants)
    rates = [Rate(BASELINE, "baseline", "the correct reference backend")]
    rates += [Rate(n, "mutant", MUTANTS[n]) for n in mutants]
    rates += [Rate(n, "variant", describe_variant(n)) for n in variants]
    root = reports / "killrate"
    # round by round, so that an interrupted measure has every name about as often
    runs = [(rate, i) for i in range(1, repeat + 1) for rate in rates]
    runner = _Runner()
    began = time.monotonic()

    def one(run: tuple[Rate, int]) -> tuple[Rate, Row]:
        rate, i = run
        name = "baseline" if rate.name == BASELINE else folder_name(rate.name)
        folder = root / name / f"run-{i}"
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "run.log"
        started = time.monotonic()
        code = runner.run(_command(paths, rate.name, folder, extra,
                                   benign=rate.kind == "variant"), log)
        return rate, _row(rate.name, rate.description, code, time.monotonic() - started,
                          folder, log, benign=rate.kind == "variant")

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        for rate, row in pool.map(one, runs):
            rate.rows.append(row)
    except BaseException:  # Ctrl-C: no run waits for its turn, the running ones are stopped
        pool.shutdown(wait=False, cancel_futures=True)
        runner.stop_all()
        raise
    finally:
        pool.shutdown(wait=True)
    return Rates(rates, repeat, list(paths), max(1, jobs), time.monotonic() - began)


def render_markdown(rates: Rates) -> str:
    lines = ["| backend | kind | whole-suite runs | failed scenarios (runs) |",
             "| --- | --- | --- | --- |"]
    for r in rates.rates:
        failed = ", ".join(f"{s} ({n})" for s, n in list(r.killers().items())[:3])
        state = r.figure() + ("" if r.ok else " **below the goal**")
        if r.errors:
            state += f", {r.errors} not judged"
        lines.append(f"| `{r.name}` | {r.kind} | {state} | {failed} |")
    verdict = "holds" if rates.ok else "FAILS"
    lines += ["", f"The goal {verdict}: every mutant caught in at least "
              f"{GOAL_CAUGHT:.0%} of the runs by the check that owns its clause, the reference "
              f"and every benign variant passing every run ({rates.repeat} runs each, "
              f"{rates.jobs} at a time, {rates.wall_s:.0f} s wall)."]
    return "\n".join(lines) + "\n"


def write(rates: Rates, reports: Path) -> tuple[Path, Path]:
    reports.mkdir(parents=True, exist_ok=True)
    js, md = reports / "killrate.json", reports / "killrate.md"
    js.write_text(json.dumps(rates.to_json(), indent=1) + "\n", encoding="utf-8")
    md.write_text("# Kill probability\n\n" + render_markdown(rates), encoding="utf-8")
    return js, md
