"""The race mutants' code: patterns that are right one request at a time, wrong concurrently.

The correct reference reads and writes a session only under its lock
(`store.lock_session`, taken first in every write transaction). Each race
mutant moves one read out from under that lock, as real code does without
noticing: an ORM object loaded at the start of a request, an existence check
through the repository, a stats refresh "after the commit". Sequential
scenarios cannot tell them apart from the reference; two requests in flight
at once can.

`RACE_WINDOW_S` (10 ms) stands for what lies between such a check and its act
in a real app: a round trip or two through an ORM to a database on another
host, where here the database is a local socket away. The mutants are wrong
without it, only caught less often: at 2 ms, `stats-own-transaction` lost an
update in about 1 round of 12, at 10 ms in about 2 of 3.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from harness.reference import store
from harness.reference.errors import ApiError, quoted
from harness.reference.store import Conn, Row

log = logging.getLogger(__name__)

RACE_WINDOW_S = 0.01  # the latency between a check and its act (see the module's text)



async def window() -> None:
    """The pause between a check and its act (tests replace it to force an interleaving)."""
    await asyncio.sleep(RACE_WINDOW_S)


RowWriter = Callable[[Conn, Row], Awaitable["Row | None"]]


@dataclass(frozen=True)
class Before:
    """What a store read before taking the session's lock: the correct reference, nothing.

    ``write`` and ``refresh`` replace the strategies ``write_message`` and
    ``refresh_stats`` for this one store, when set.
    """

    write: RowWriter | None = None
    refresh: store.StatsRefresher | None = None


BeforeLock = Callable[[AsyncConnectionPool[Any], str, Sequence[Row]], Awaitable[Before]]
AfterCommit = Callable[[AsyncConnectionPool[Any], str], Awaitable[None]]
SessionOpener = Callable[[Conn, str], Awaitable["Row | None"]]
SessionCreator = Callable[[Conn, str, uuid.UUID, str], Awaitable[Row]]


async def read_nothing(pool: AsyncConnectionPool[Any], session_id: str,
                       rows: Sequence[Row]) -> Before:
    """The reference: every read of a store happens under the session's lock."""
    return Before()


async def nothing_after(pool: AsyncConnectionPool[Any], session_id: str) -> None:
    """The reference: the stats were refreshed in the store's own transaction."""


async def lock_and_find(conn: Conn, session_id: str) -> Row | None:
    """The reference: lock the session id, then read the session (absent or not)."""
    await store.lock_session(conn, session_id)
    return await store.find_session(conn, session_id)


async def _read(pool: AsyncConnectionPool[Any], sql: str, params: Sequence[Any]) -> list[Row]:
    async with pool.connection() as conn:
        return await store.fetch_all(conn, sql, params)


# --- check-then-insert: which ids are new is decided before the lock ------------------


async def check_ids_first(pool: AsyncConnectionPool[Any], session_id: str,
                          rows: Sequence[Row]) -> Before:
    """Mutant `check-then-insert`: SELECT which ids are stored, then INSERT the absent ones.

    The SELECT runs before the write transaction, as a repository's ``exists``
    does: two posts of one new id both find it absent, and the second INSERT
    hits the primary key (500) instead of updating the row.
    """
    found = await _read(pool, "SELECT id, session_id FROM chat_messages WHERE id = ANY(%s)",
                        ([row["id"] for row in rows],))
    owner = {r["id"]: r["session_id"] for r in found}
    await window()

    async def write(conn: Conn, row: Row) -> Row | None:
        if row["id"] not in owner:
            owner[row["id"]] = row["session_id"]  # a second copy in the batch updates
            return await store.insert_message(conn, row)
        if owner[row["id"]] != row["session_id"]:
            return None  # another session's: 409
        return await store.update_message(conn, row)

    return Before(write=write)


# --- stats by read-modify-write: the session's messages loaded before the lock ---------


def stats_of(rows: Sequence[Row]) -> dict[str, Any]:
    """C-MSG-7 computed in the app, as `store.refresh_stats` computes it in SQL."""
    ok = [r for r in rows if r["error_message"] is None]
    latest = max(ok, key=lambda r: (r["message_timestamp"], r["seq"]), default=None)
    modelled = [r for r in ok if r["model"]]
    latest_model = max(modelled, key=lambda r: (r["message_timestamp"], r["seq"]),
                       default=None)
    return {
        "message_count": len(ok),
        "total_tokens": sum(r["total_tokens"] or 0 for r in ok if r["role"] == "assistant"),
        "last_message_timestamp": latest["message_timestamp"] if latest else None,
        "last_message_preview": latest["content"][:100] if latest else None,
        "last_model": latest_model["model"] if latest_model else None,
    }


async def write_stats(conn: Conn, session_id: str, stats: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE chat_sessions SET message_count = %(message_count)s, "
        "total_tokens = %(total_tokens)s, last_message_timestamp = %(last_message_timestamp)s, "
        "last_message_preview = %(last_message_preview)s, last_model = %(last_model)s, "
        "updated_at = clock_timestamp() WHERE id = %(sid)s",
        {**stats, "sid": session_id},
    )


def _messages_sql() -> str:
    return f"SELECT {store.MESSAGE_COLUMNS} FROM chat_messages WHERE session_id = %s"


async def load_messages_first(pool: AsyncConnectionPool[Any], session_id: str,
                              rows: Sequence[Row]) -> Before:
    """Mutant `stats-read-modify-write`: the stats are the session's messages as loaded
    at the start of the request, with the batch applied, written back after it.

    Right for one request at a time; two batches in flight both start from the
    same messages, and the later write drops the other's (a lost update).
    """
    loaded = await _read(pool, _messages_sql(), (session_id,))
    await window()

    async def refresh(conn: Conn, sid: str, written: Sequence[Row]) -> None:
        merged = {r["id"]: r for r in loaded}
        merged.update({r["id"]: r for r in written})
        await write_stats(conn, sid, stats_of(list(merged.values())))

    return Before(refresh=refresh)


# --- stats in a transaction of their own ------------------------------------------------


async def no_stats(conn: Conn, session_id: str, written: Sequence[Row]) -> None:
    """Mutant `stats-own-transaction`: the store's transaction leaves the stats alone..."""


async def stats_after_commit(pool: AsyncConnectionPool[Any], session_id: str) -> None:
    """...and a second transaction refreshes them once the rows are committed.

    Written as stats often are: a consistent read (REPEATABLE READ) of the rows,
    then the UPDATE, best effort: an error there is logged, and the store has
    answered 201 anyway. Between the two transactions readers see rows the stats
    do not count; when two stores are in flight, the later stats transaction
    fails to serialise with the earlier one and is dropped, leaving the stats
    of the earlier read for good.
    """
    try:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows = await store.fetch_all(conn, _messages_sql(), (session_id,))
            await window()
            await write_stats(conn, session_id, stats_of(rows))
    except (errors.SerializationFailure, errors.DeadlockDetected) as exc:
        log.warning("session %s: stats not refreshed: %s", session_id, exc)


# --- sessions created by SELECT, then INSERT ------------------------------------------


async def find_then_lock(conn: Conn, session_id: str) -> Row | None:
    """Mutant `session-select-then-insert`: the session is read before its lock is taken.

    Two first stores (or creations) of one new session both find none; the
    second INSERT then meets the first one's row.
    """
    session = await store.find_session(conn, session_id)
    await window()
    await store.lock_session(conn, session_id)
    return session


async def insert_session_or_taken(conn: Conn, session_id: str, user_id: uuid.UUID,
                                  title: str) -> Row:
    """The INSERT of `session-select-then-insert`: a duplicate key means "taken" (409).

    Meant for another user's id (C-SES-2), it reaches the session's own owner
    whose other tab created it a moment before.
    """
    try:
        return await store.insert_session(conn, session_id, user_id, title)
    except errors.UniqueViolation:
        raise ApiError("conflict", f"Session id {quoted(session_id)} is already taken") from None
