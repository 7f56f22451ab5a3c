"""Fixtures for the reference backend's own tests: a real embedded PostgreSQL, a scripted provider.

Async tests run on anyio's pytest plugin (installed with httpx/starlette), so
no extra test dependency is needed; every test module sets `pytestmark`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    # The package is not installed in the venv; make `import harness` work
    # whatever directory pytest is started from.
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from refkit import Api, FakeProvider, backend  # noqa: E402

SCHEMA = REPO / "fixtures" / "schema.sql"


def pytest_configure(config: pytest.Config) -> None:
    # `chat-harness run` starts pytest with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1;
    # these async tests still need anyio's plugin, so load it by hand.
    if not config.pluginmanager.has_plugin("anyio"):
        config.pluginmanager.import_plugin("anyio.pytest_plugin")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One embedded PostgreSQL for the whole run, with the harness schema applied."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # As root, pgserver runs postgres as its own user and needs a private
        # runtime dir; one fixed folder, reused by every run.
        runtime_dir = Path(tempfile.gettempdir()) / f"chat-harness-xdg-{os.getuid()}"
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        runtime_dir.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    import pgserver  # imported late: it reads XDG_RUNTIME_DIR

    parent = Path(tempfile.mkdtemp(prefix="chat-harness-ref-pg-"))
    server = pgserver.get_server(parent / "data", cleanup_mode="delete")
    url = server.get_uri()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
    try:
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def db(pg_url: str) -> str:
    """The database URL, with both tables emptied first."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM chat_messages")
        conn.execute("DELETE FROM chat_sessions")
    return pg_url


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
async def api(db: str, provider: FakeProvider) -> AsyncIterator[Api]:
    """The correct backend, lifespan entered, driven in-process."""
    async with backend(db, provider) as client:
        yield client
