"""Fixtures for the harness's own tests: one real PostgreSQL for the whole session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config import RunConfig
from harness.db import Database, provision

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    """An embedded server (or CHAT_HARNESS_DATABASE_URL's), schema applied."""
    url = os.environ.get("CHAT_HARNESS_DATABASE_URL")
    db = provision("url" if url else "embedded", url=url)
    try:
        db.apply_schema(ROOT / "fixtures" / "schema.sql")
        yield db
    finally:
        db.close()


@pytest.fixture
def config() -> RunConfig:
    return RunConfig(fixtures=ROOT / "fixtures")


@pytest.fixture
def run_tmp() -> Iterator[Path]:
    """A child run's TMPDIR: short, as PostgreSQL's socket path may be 107 bytes at most."""
    path = Path(tempfile.mkdtemp(prefix="ch-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# Under pytest-xdist the longest tests go first. The slowest tests by themselves (a
# minute each on a busy machine), then the modules whose tests start whole runs
# (subprocesses, servers), as `pytest -n auto --durations=0` measured them.
SLOWEST = ("test_the_reference_passes_the_ci_profile",
           "test_a_mutant_is_found_and_its_yaml_is_a_regression_test",
           "test_the_reference_holds_the_contract_under_the_ci_profile",
           "test_a_signal_at_a_random_moment_leaves_nothing",
           "test_explore_against_a_backend_that_refuses_its_tokens_fails",
           "test_the_race_family_passes_on_the_reference",
           "test_whole_suite_passes_through_target_cmd",
           "test_black_box_workers_each_start_a_backend_of_their_own",
           "test_a_mutant_is_found_with_a_reproduction",
           "test_parallel_run_matches_the_serial_one",
           "test_a_project_without_scenarios_runs_as_without_the_plugin",
           "test_a_run_whose_database_stops_ends_with_a_clear_message")
SLOW_MODULES = ("test_explore.py", "test_interrupt.py", "test_fuzz.py", "test_refusals.py",
                "test_xdist.py", "test_blackbox.py", "test_races.py", "test_plugin.py",
                "test_targets.py", "test_faults.py", "test_lifecycle.py", "test_run_output.py",
                "test_endings.py", "test_startup_errors.py", "test_corpus.py")


def pytest_configure(config: pytest.Config) -> None:
    """`pytest -n auto` hands tests out by work stealing (an idle worker takes half of
    what another has not started) unless the command line says --dist: with the long
    tests first, the workers end together instead of one finishing a long test alone."""
    if (getattr(config.option, "numprocesses", None) and config.option.dist == "load"
            and not any(a.startswith("--dist") for a in config.invocation_params.args)):
        config.option.dist = "worksteal"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist the slow tests come first: each worker starts on a long one and
    the short ones fill in at the end, instead of a minute-long test starting last while
    the other worker idles. A serial run keeps its order; every worker sorts alike, as
    xdist needs."""
    if not hasattr(config, "workerinput"):
        return
    slowest = {name: n for n, name in enumerate(SLOWEST)}
    modules = {name: n for n, name in enumerate(SLOW_MODULES)}

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = getattr(item, "originalname", None) or item.name
        if name in slowest:
            return 0, slowest[name]
        return 1, modules.get(item.path.name, len(SLOW_MODULES))

    items.sort(key=rank)
