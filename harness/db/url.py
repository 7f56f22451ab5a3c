"""A PostgreSQL server the user gives by URL.

Nothing a user stored is ever touched: the harness creates a fresh database
``chat_harness_<random>`` on that server, runs there, and drops it at the end.
"""

from __future__ import annotations

import contextlib
import secrets
from urllib.parse import urlsplit, urlunsplit

from harness.db._base import Database
from harness.errors import ConfigError, DatabaseError


def _with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def start(url: str) -> Database:
    import psycopg

    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"--db-url must be a postgresql:// URL, got {url!r}",
            hint="e.g. postgresql://user:password@127.0.0.1:5432/postgres",
        )
    name = f"chat_harness_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"the user of --db-url may not CREATE DATABASE: {exc}",
            hint="chat-harness never writes into an existing database; "
            "grant CREATEDB or give a server where it may create one",
        ) from exc
    except psycopg.Error as exc:
        where = urlsplit(url)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError(
            f"cannot use --db-url: {first}",
            hint=f"check that PostgreSQL runs at {where.hostname or 'its socket'}"
            f"{':' + str(where.port) if where.port else ''} and that the URL's user, "
            "password and database are right; or leave --db-url out (--db embedded "
            "starts a PostgreSQL of its own)",
        ) from exc

    def stop() -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(
            url, autocommit=True, connect_timeout=10
        ) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())

    own = _with_dbname(url, name)
    host = urlsplit(url).hostname
    return Database(
        kind="url",
        url=own,
        tcp_url=own if host else None,
        description=f"database {name} on the server of --db-url",
        _stop=stop,
    )


def attach(url: str) -> Database:
    """The database of a backend that is already running (``--target-url`` with ``--db-url``).

    Unlike :func:`start` this creates nothing: it is the backend's own
    database, read by DB-level checks. The harness empties its chat tables
    between scenarios only when the user says so (``--reset-db``).
    """
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"--db-url must be a postgresql:// URL, got {url!r}",
            hint="the URL of the database the backend under test uses",
        )
    parts = urlsplit(url)
    shown = urlunsplit(parts._replace(netloc=parts.hostname or "")) if parts.password else url
    return Database(kind="attached", url=url, tcp_url=url,
                    description=f"the backend's database {shown}")
