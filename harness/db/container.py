"""PostgreSQL in a Docker container through testcontainers.

No image registry may be reachable (CI here has none), so the image must exist
locally; testcontainers' Ryuk reaper image cannot be pulled either, so Ryuk is
disabled and ``close`` removes the container itself.
"""

from __future__ import annotations

import contextlib
import os
import secrets

from harness.db._base import Database, wait_until_accepting
from harness.errors import DatabaseError

DEFAULT_IMAGE = "postgres:16"


def docker_available(timeout_s: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (quickly; never raises)."""
    try:
        import docker

        client = docker.from_env(timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def start(image: str = DEFAULT_IMAGE) -> Database:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    try:
        from testcontainers.postgres import PostgresContainer
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DatabaseError("the container database needs 'testcontainers'") from exc
    password = secrets.token_hex(12)
    container = PostgresContainer(
        image, username="postgres", password=password, dbname="chat", driver=None
    )
    try:
        container.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            container.stop()
        raise DatabaseError(
            f"could not start a PostgreSQL container from {image!r}: {exc}",
            hint="no registry may be reachable: build the image locally "
            "(chat-harness db build-image), or use --db embedded",
        ) from exc
    host = container.get_container_host_ip()
    if host == "localhost":
        host = "127.0.0.1"
    port = container.get_exposed_port(5432)
    url = f"postgresql://postgres:{password}@{host}:{port}/chat"
    try:
        wait_until_accepting(url, deadline_s=30, what=f"container {image}")
    except BaseException:
        container.stop()
        raise
    return Database(
        kind="container",
        url=url,
        tcp_url=url,
        description=f"container {image} ({container.get_wrapped_container().short_id})",
        _stop=container.stop,
    )
