"""What every PostgreSQL provider gives the harness: URLs, schema, reset, stop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.errors import DatabaseError

if TYPE_CHECKING:
    import psycopg

# Tables in child-to-parent order, so a reset never trips a foreign key.
TABLES = ("chat_messages", "chat_sessions")
_T = TypeVar("_T")


@dataclass
class Database:
    """A running PostgreSQL database that the harness owns for one run.

    ``url`` is what the harness and an in-process backend connect with (it may
    be a Unix-socket URL); ``tcp_url`` is a ``postgresql://user:pass@127.0.0.1``
    URL for backends in other languages, or ``None`` where there is none.
    """

    kind: str
    url: str
    tcp_url: str | None
    description: str
    _stop: Any = field(default=None, repr=False)
    _conn: psycopg.Connection[Any] | None = field(default=None, repr=False)

    # -- connection -------------------------------------------------------
    def connection(self) -> psycopg.Connection[Any]:
        """The harness's own autocommit connection (opened once, lazily)."""
        import psycopg

        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"cannot connect to the {self.kind} database ({self.description}): {exc}",
                    hint="check that the server runs and the URL is right",
                ) from exc
        return self._conn

    def apply_schema(self, schema: Path) -> None:
        """Apply ``schema`` (C-RUN-3). The file is idempotent, so twice is harmless."""
        try:
            sql = schema.read_text(encoding="utf-8")
        except OSError as exc:
            raise DatabaseError(f"cannot read the schema {schema}: {exc}") from exc
        import psycopg

        try:
            self.connection().execute(sql.encode())
        except psycopg.Error as exc:
            raise DatabaseError(
                f"applying {schema} failed: {exc}",
                hint="the schema must be valid PostgreSQL and idempotent",
            ) from exc

    def reset(self) -> None:
        """Empty the chat tables so the next scenario starts from nothing.

        ``DELETE`` on these small tables measured ~0.7 ms against ~35 ms for
        ``TRUNCATE`` (which must take an exclusive lock and touch the files).
        """
        sql = "; ".join(f"DELETE FROM {t}" for t in TABLES).encode()
        self._execute(lambda conn: conn.execute(sql), "emptying the chat tables")

    def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        """Run ``sql`` and return the rows as dicts (for DB expectations)."""
        from psycopg.rows import dict_row

        def run(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(sql.encode() if params is None else sql, params)
                if cur.description is None:
                    return []
                return list(cur.fetchall())

        return self._execute(run, "a query of the scenario")

    def _execute(self, work: Callable[[psycopg.Connection[Any]], _T], what: str) -> _T:
        """``work(connection)``; a connection the server cut (a restart, a failover)
        is reopened once; a server that is gone is a :class:`DatabaseError`.

        SQL errors of the query itself (a typo in a scenario's ``db:`` step) are
        the caller's to report and pass through unchanged.
        """
        import psycopg

        for attempt in (1, 2):
            conn = self.connection()
            try:
                return work(conn)
            except psycopg.OperationalError as exc:
                # AdminShutdown, a closed socket: is the connection or the server gone?
                with contextlib.suppress(Exception):
                    conn.close()
                self._conn = None
                if attempt == 2:
                    raise DatabaseError(
                        f"{what} failed: the {self.kind} database ({self.description}) "
                        f"does not answer: {exc}",
                        hint="the server stopped or restarted during the run; "
                        "see its log, then run again",
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- lifetime ---------------------------------------------------------
    def close(self) -> None:
        """Close the harness's connection and stop whatever this provider started."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until_accepting(url: str, *, deadline_s: float, alive: Any = None, what: str) -> None:
    """Poll ``url`` until a connection succeeds, ``alive()`` is false, or the deadline."""
    import psycopg

    end = time.monotonic() + deadline_s
    last: Exception | None = None
    delay = 0.01
    while time.monotonic() < end:
        if alive is not None and not alive():
            raise DatabaseError(f"{what} exited while starting")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError as exc:
            last = exc
        time.sleep(delay)  # poll interval, not a wait for an event we could await
        delay = min(delay * 2, 0.2)
    raise DatabaseError(f"{what} did not accept connections within {deadline_s:.0f} s: {last}")
