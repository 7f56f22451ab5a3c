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


# The modules whose tests start whole runs (subprocesses, servers, seconds to a minute
# each), the slowest first, as `pytest -n auto --durations=0` measured them.
SLOW_FIRST = ("test_explore.py", "test_interrupt.py", "test_fuzz.py", "test_refusals.py",
              "test_xdist.py", "test_blackbox.py", "test_races.py", "test_plugin.py",
              "test_targets.py", "test_faults.py", "test_lifecycle.py", "test_run_output.py",
              "test_endings.py", "test_startup_errors.py", "test_corpus.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`pytest -n auto`) the slow tests are handed out first: each
    worker starts on a long one and the short ones fill in at the end, instead of a
    minute-long test starting last while the other worker idles. A serial run keeps
    its order; every worker sorts alike, as xdist needs."""
    if not hasattr(config, "workerinput"):
        return
    rank = {name: n for n, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))
