"""Real PostgreSQL for every run, through one interface and three providers.

- ``embedded``: PostgreSQL binaries from the pgserver wheel (default without Docker)
- ``container``: a testcontainers PostgresContainer (default where Docker answers)
- ``url``: a server the user gives (``--db-url`` / ``CHAT_HARNESS_DATABASE_URL``)
"""

from __future__ import annotations

from pathlib import Path

from harness.db._base import TABLES, Database
from harness.errors import ConfigError

KINDS = ("auto", "embedded", "container", "url")


def resolve_kind(kind: str, url: str | None) -> str:
    """Turn ``auto`` into a concrete provider name."""
    if kind not in KINDS:
        raise ConfigError(
            f"unknown database provider {kind!r}", hint=f"choose one of {', '.join(KINDS)}"
        )
    if kind == "url" and not url:
        raise ConfigError("--db url needs a URL", hint="pass --db-url postgresql://…")
    if kind != "auto":
        return kind
    if url:
        return "url"
    from harness.db.container import docker_available

    return "container" if docker_available() else "embedded"


def provision(kind: str = "auto", *, url: str | None = None, image: str | None = None,
              schema: Path | None = None) -> Database:
    """Start (or attach to) PostgreSQL and return the harness's :class:`Database`.

    ``schema``: the schema file the caller will apply; the embedded server's
    warm cache then starts from a copy with it already loaded (and
    ``apply_schema`` of the same file does nothing). Others ignore it.
    """
    kind = resolve_kind(kind, url)
    if kind == "embedded":
        from harness.db import embedded

        return embedded.start(schema)
    if kind == "container":
        from harness.db import container

        return container.start(image or container.DEFAULT_IMAGE)
    from harness.db import url as url_provider

    assert url is not None
    return url_provider.start(url)


__all__ = ["KINDS", "TABLES", "Database", "provision", "resolve_kind"]
