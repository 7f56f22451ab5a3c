"""All SQL of the reference backend, over the harness schema (fixtures/schema.sql).

Concurrency: every write to a session first takes a transaction-scoped
advisory lock on the session id, so concurrent first posts of the same
session or message serialise instead of racing on the primary keys; what can
still collide (two sessions claiming one new message id in opposite orders)
is retried on deadlock / serialization failure by `in_transaction`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from psycopg import AsyncConnection, errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

Row = dict[str, Any]
Conn = AsyncConnection[Any]
T = TypeVar("T")

TRANSACTION_ATTEMPTS = 5

MESSAGE_COLUMNS = (
    "id, session_id, seq, role, content, model, input_tokens, output_tokens, total_tokens, "
    "user_message_id, content_type, elapsed_ms, completion_id, message_timestamp, error_message"
)
SESSION_COLUMNS = (
    "id, user_id, title, created_at, updated_at, message_count, total_tokens, last_model, "
    "last_message_preview, last_message_timestamp"
)

# The ordering of C-MSG-9: by timestamp, ties by order of first storage.
ORDER_CONVERSATION = "message_timestamp, seq"
# Mutant `order-by-storage`.
ORDER_STORAGE = "seq"

# The since_ts filter of C-MSG-9: strictly after the instant the client holds.
SINCE_STRICT = "message_timestamp > %s"
# Mutant `since-ts-inclusive`: the message at since_ts comes back again.
SINCE_INCLUSIVE = "message_timestamp >= %s"


async def in_transaction(pool: AsyncConnectionPool[Any], work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run `work` in one transaction; retried from scratch on deadlock or serialization failure."""
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            async with pool.connection() as conn, conn.transaction():
                return await work(conn)
        except (errors.DeadlockDetected, errors.SerializationFailure):
            if attempt == TRANSACTION_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def fetch_one(conn: Conn, sql: str, params: Sequence[Any] | dict[str, Any]) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()


async def fetch_all(conn: Conn, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def ping(conn: Conn) -> None:
    await conn.execute("SELECT 1")


# --- sessions -----------------------------------------------------------------


async def lock_session(conn: Conn, session_id: str) -> None:
    """Serialise writers of one session id until the transaction ends.

    Hash collisions between ids only serialise more than needed.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (session_id,))


async def find_session(conn: Conn, session_id: str) -> Row | None:
    return await fetch_one(
        conn, f"SELECT {SESSION_COLUMNS} FROM chat_sessions WHERE id = %s", (session_id,)
    )


async def insert_session(conn: Conn, session_id: str, user_id: uuid.UUID, title: str) -> Row:
    row = await fetch_one(
        conn,
        f"INSERT INTO chat_sessions (id, user_id, title) VALUES (%s, %s, %s) "
        f"RETURNING {SESSION_COLUMNS}",
        (session_id, user_id, title),
    )
    assert row is not None
    return row


async def rename_session(conn: Conn, session_id: str, title: str) -> Row:
    row = await fetch_one(
        conn,
        f"UPDATE chat_sessions SET title = %s, updated_at = clock_timestamp() WHERE id = %s "
        f"RETURNING {SESSION_COLUMNS}",
        (title, session_id),
    )
    assert row is not None
    return row


async def delete_session(conn: Conn, session_id: str) -> None:
    # chat_messages rows go with it: ON DELETE CASCADE.
    await conn.execute("DELETE FROM chat_sessions WHERE id = %s", (session_id,))


async def list_sessions(conn: Conn, user_id: uuid.UUID) -> list[Row]:
    return await fetch_all(
        conn,
        f"SELECT {SESSION_COLUMNS} FROM chat_sessions WHERE user_id = %s "
        "ORDER BY updated_at DESC, id ASC",
        (user_id,),
    )


async def refresh_stats(conn: Conn, session_id: str) -> None:
    """C-MSG-7: recompute the session's stats over its messages without error."""
    await conn.execute(
        """
        WITH ok AS (
            SELECT role, content, model, total_tokens, message_timestamp, seq
            FROM chat_messages
            WHERE session_id = %(sid)s AND error_message IS NULL
        ), latest AS (
            SELECT message_timestamp, content FROM ok
            ORDER BY message_timestamp DESC, seq DESC LIMIT 1
        ), latest_model AS (
            SELECT model FROM ok WHERE model IS NOT NULL AND model <> ''
            ORDER BY message_timestamp DESC, seq DESC LIMIT 1
        )
        UPDATE chat_sessions SET
            message_count = (SELECT count(*) FROM ok),
            total_tokens = (SELECT coalesce(sum(total_tokens), 0) FROM ok WHERE role = 'assistant'),
            last_message_timestamp = (SELECT message_timestamp FROM latest),
            last_message_preview = (SELECT left(content, 100) FROM latest),
            last_model = (SELECT model FROM latest_model),
            updated_at = clock_timestamp()
        WHERE id = %(sid)s
        """,
        {"sid": session_id},
    )


StatsRefresher = Callable[[Conn, str, Sequence[Row]], Awaitable[None]]


async def refresh_stats_after_store(conn: Conn, session_id: str, written: Sequence[Row]) -> None:
    """C-MSG-7: every store refreshes the stats and `updated_at`, updates included."""
    await refresh_stats(conn, session_id)


async def refresh_stats_on_insert(conn: Conn, session_id: str, written: Sequence[Row]) -> None:
    """Mutant `stats-not-updated-on-upsert`: only a store that inserted a row refreshes.

    Like an `AFTER INSERT` trigger with no `AFTER UPDATE` twin: a retried
    message (error → success) or an edited answer leaves the stats stale.
    """
    if any(row.get("inserted", True) for row in written):
        await refresh_stats(conn, session_id)


# --- messages -----------------------------------------------------------------


async def user_message_ids(conn: Conn, session_id: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are stored user messages of this session."""
    if not ids:
        return set()
    rows = await fetch_all(
        conn,
        "SELECT id FROM chat_messages WHERE session_id = %s AND role = 'user' AND id = ANY(%s)",
        (session_id, list(ids)),
    )
    return {row["id"] for row in rows}


async def list_messages(
    conn: Conn,
    session_id: str,
    since: datetime | None,
    order_by: str,
    since_filter: str = SINCE_STRICT,
) -> list[Row]:
    where = "session_id = %s"
    params: list[Any] = [session_id]
    if since is not None:
        where += f" AND {since_filter}"
        params.append(since)
    return await fetch_all(
        conn,
        f"SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE {where} ORDER BY {order_by}",
        params,
    )


_INSERT = """
    INSERT INTO chat_messages AS m (
        id, session_id, role, content, model, input_tokens, output_tokens, total_tokens,
        user_message_id, content_type, elapsed_ms, completion_id, message_timestamp, error_message
    ) VALUES (
        %(id)s, %(session_id)s, %(role)s, %(content)s, %(model)s, %(input_tokens)s,
        %(output_tokens)s, %(total_tokens)s, %(user_message_id)s, %(content_type)s,
        %(elapsed_ms)s, %(completion_id)s, %(message_timestamp)s, %(error_message)s
    )
"""

# Last write wins, but only inside the same session (C-AUTH-3): a row of
# another session fails the WHERE, so no row comes back and the caller
# answers 409. `seq` is not in the SET list: an update keeps the order of
# first storage.
_UPSERT = (
    _INSERT
    + """
    ON CONFLICT (id) DO UPDATE SET
        role = EXCLUDED.role, content = EXCLUDED.content, model = EXCLUDED.model,
        input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
        total_tokens = EXCLUDED.total_tokens, user_message_id = EXCLUDED.user_message_id,
        content_type = EXCLUDED.content_type, elapsed_ms = EXCLUDED.elapsed_ms,
        completion_id = EXCLUDED.completion_id, message_timestamp = EXCLUDED.message_timestamp,
        error_message = EXCLUDED.error_message
    WHERE m.session_id = EXCLUDED.session_id
    """
    # xmax is 0 on a row this statement inserted, not on one it updated.
    + f"RETURNING {MESSAGE_COLUMNS}, (m.xmax = 0) AS inserted"
)

MessageWriter = Callable[[Conn, Row], Awaitable["Row | None"]]


async def upsert_message(conn: Conn, row: Row) -> Row | None:
    """Insert or update one message; None when the id belongs to another session."""
    return await fetch_one(conn, _UPSERT, row)


async def insert_message(conn: Conn, row: Row) -> Row | None:
    """Mutant `insert-not-upsert`: storing an id twice is a duplicate-key error (the seed's 500)."""
    return await fetch_one(conn, _INSERT + f"RETURNING {MESSAGE_COLUMNS}", row)


_UPDATE = """
    UPDATE chat_messages SET
        role = %(role)s, content = %(content)s, model = %(model)s,
        input_tokens = %(input_tokens)s, output_tokens = %(output_tokens)s,
        total_tokens = %(total_tokens)s, user_message_id = %(user_message_id)s,
        content_type = %(content_type)s, elapsed_ms = %(elapsed_ms)s,
        completion_id = %(completion_id)s, message_timestamp = %(message_timestamp)s,
        error_message = %(error_message)s
    WHERE id = %(id)s AND session_id = %(session_id)s
"""


async def update_message(conn: Conn, row: Row) -> Row | None:
    """Update a stored message of the row's session; None when there is none (mutant
    `check-then-insert` updates the ids its check found)."""
    return await fetch_one(conn, _UPDATE + f"RETURNING {MESSAGE_COLUMNS}", row)


async def insert_or_keep_message(conn: Conn, row: Row) -> Row | None:
    """Mutant `retry-not-updated`: ON CONFLICT DO NOTHING, so a retry never updates the row."""
    stored = await fetch_one(
        conn, _INSERT + f"ON CONFLICT (id) DO NOTHING RETURNING {MESSAGE_COLUMNS}", row
    )
    if stored is not None:
        return stored
    return await fetch_one(
        conn,
        f"SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE id = %s AND session_id = %s",
        (row["id"], row["session_id"]),
    )


# Mutant `unlocked-check-then-insert`: how long a writer waits between its check and its
# insert; a real backend's window is a round trip or two, this one is hit every time.
RACE_WINDOW_S = 0.05


async def check_then_insert_message(conn: Conn, row: Row) -> Row | None:
    """Mutant `unlocked-check-then-insert`: the classic "SELECT, then INSERT if absent".

    Two first posts of one new id at once both find it absent and both
    insert: the second fails on the primary key (a 500). Sequentially it is
    correct, so only concurrent posts can catch it.
    """
    found = await fetch_one(conn, "SELECT session_id FROM chat_messages WHERE id = %s",
                            (row["id"],))
    if found is None:
        await asyncio.sleep(RACE_WINDOW_S)
        return await fetch_one(conn, _INSERT + f"RETURNING {MESSAGE_COLUMNS}", row)
    if found["session_id"] != row["session_id"]:
        return None
    return await fetch_one(conn, _UPSERT, row)


async def upsert_paired_one_back(conn: Conn, row: Row) -> Row | None:
    """Mutant `pairing-off-by-one`: an answer is stored paired with the user message
    before the one it names (an index shifted by one over the session's history)."""
    if row["role"] == "assistant" and row["user_message_id"] is not None:
        before = await fetch_one(
            conn,
            "SELECT u.id FROM chat_messages u, chat_messages named "
            "WHERE named.id = %s AND named.session_id = %s AND u.session_id = named.session_id "
            "AND u.role = 'user' AND (u.message_timestamp, u.seq) "
            "< (named.message_timestamp, named.seq) "
            "ORDER BY u.message_timestamp DESC, u.seq DESC LIMIT 1",
            (row["user_message_id"], row["session_id"]),
        )
        if before is not None:
            row = {**row, "user_message_id": before["id"]}
    return await fetch_one(conn, _UPSERT, row)

