"""Running scenarios: the session, one run, the simulated client, results."""

from __future__ import annotations

from pathlib import Path

from harness.config import RunConfig
from harness.db import Database
from harness.result import ScenarioResult


def run_scenarios(paths: list[Path], config: RunConfig | None = None, *,
                  db: Database | None = None) -> list[ScenarioResult]:
    """Load every scenario under ``paths`` and run it; the results, in order.

    ``db`` lets several runs share one PostgreSQL server (it is not closed).
    """
    from harness.runner.session import Harness
    from harness.scenario.load import discover, load_file

    scenarios = [s for p in discover(paths) for s in load_file(p)]
    with Harness(config or RunConfig(), db=db) as harness:
        return [harness.run(s) for s in scenarios]


__all__ = ["run_scenarios"]
