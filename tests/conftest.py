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


def pytest_configure(config: pytest.Config) -> None:
    """`pytest -n auto` hands tests out by work stealing (an idle worker takes half of
    what another has not started) unless the command line says --dist, so that the
    workers end together instead of one running a long test while the other idles on
    nothing. Each worker keeps the collection order (tests that were handed out
    longest first met order dependencies between modules: docs/speed.md)."""
    if (getattr(config.option, "numprocesses", None) and config.option.dist == "load"
            and not any(a.startswith("--dist") for a in config.invocation_params.args)):
        config.option.dist = "worksteal"
