"""The audit after the load: what every client holds, against the API and the database.

For each client, in turn: the API lists its conversation in order, each
message once and as the client stored it; the database holds the same rows,
none lost, none extra, and a ``chat_sessions`` row of the client's user whose
``message_count`` and ``total_tokens`` are exact; the API's session shows the
same stats. Without database access (a target reached by URL alone) the
stored and lost counts come from the API's listing. Then the duplicate first
posts (a new id posted at once by two clients of one user): each is stored
once, in the session it was posted to, and listed once there.

Every finding is a problem on the report, named after its client; the counts
(stored, lost, duplicated, sessions with exact stats) feed its summary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.db import Database
    from harness.load.clients import Client
    from harness.load.traffic import Traffic
    from harness.scenario.frontend import ChatClient

Row = dict[str, Any]
Held = dict[Any, Row]  # the messages a client holds, by id


@dataclass(frozen=True)
class _Stored:
    """What the database holds for the clients' sessions, by session id."""

    rows: dict[str, list[Row]]  # chat_messages
    sessions: dict[str, Row]  # chat_sessions


async def audit(traffic: Traffic, clients: list[Client], db: Database | None) -> None:
    """Check every client's conversation; findings go to ``traffic.report``."""
    report = traffic.report
    report.sessions = len(clients)
    stored = _read_database(db, clients) if db is not None else None
    report.db_checked = stored is not None
    listed = {cl.client.session_id: await _audit_client(traffic, cl, stored) for cl in clients}
    _check_twin_posts(traffic, listed, _twin_rows(db, traffic) if db is not None else None)


def _read_database(db: Database, clients: list[Client]) -> _Stored:
    sessions = [cl.client.session_id for cl in clients]
    stored = _Stored({}, {})
    for row in db.query("SELECT id, session_id, role, content, error_message "
                        "FROM chat_messages WHERE session_id = ANY(%s)", [sessions]):
        stored.rows.setdefault(row["session_id"], []).append(row)
    for row in db.query("SELECT id, user_id::text AS user_id, message_count, total_tokens "
                        "FROM chat_sessions WHERE id = ANY(%s)", [sessions]):
        stored.sessions[row["id"]] = row
    return stored


async def _audit_client(traffic: Traffic, cl: Client, stored: _Stored | None) -> list[Any]:
    """Audit one client; the ids the API lists for its session."""
    report = traffic.report
    c = cl.client
    held = {m["id"]: m for m in c.history}
    report.expected += len(held)
    expected = _expected_stats(c)
    ids = await _check_api_messages(traffic, cl, held)
    if stored is not None:
        _check_rows(traffic, cl, held, stored.rows.get(c.session_id, []))
        db_exact = _check_db_stats(traffic, cl, stored.sessions.get(c.session_id), expected)
    else:
        report.stored += len(set(ids))
        report.lost += len(set(held) - set(ids))
        db_exact = True
    api_exact = await _check_api_stats(traffic, cl, expected)
    report.stats_exact += db_exact and api_exact
    return ids


def _twin_rows(db: Database, traffic: Traffic) -> dict[str, list[str]]:
    """The sessions holding each id posted by two clients at once, by the rows."""
    out: dict[str, list[str]] = {}
    for row in db.query("SELECT id, session_id FROM chat_messages WHERE id = ANY(%s)",
                        [list(traffic.twin_posts)]):
        out.setdefault(row["id"], []).append(row["session_id"])
    return out


def _check_twin_posts(traffic: Traffic, listed: dict[str, list[Any]],
                      rows: dict[str, list[str]] | None) -> None:
    """Each duplicate first post is stored once, in its session, and listed once there."""
    report = traffic.report
    report.twin_posts = len(traffic.twin_posts)
    for mid, cl in traffic.twin_posts.items():
        session = cl.client.session_id
        holders = (rows.get(mid, []) if rows is not None
                   else [s for s, ids in listed.items() for i in ids if i == mid])
        times = listed.get(session, []).count(mid)
        if holders == [session] and times == 1:
            report.twin_exact += 1
            continue
        where = "the rows" if rows is not None else "the API"
        traffic.problem(cl, f"{mid}, posted at once by two clients of its user: held by "
                        f"{holders or 'no session'} (by {where}), listed {times} times in "
                        f"{session}; expected once, there")


def _expected_stats(c: ChatClient) -> tuple[int, int]:
    """``message_count`` and ``total_tokens`` of what the client holds, failed turns left out."""
    ok = [m for m in c.history if not m.get("error")]
    tokens = sum(int(m.get("total_tokens") or 0) for m in ok if m["role"] == "assistant")
    return len(ok), tokens


# -- against the API ---------------------------------------------------------------------


async def _check_api_messages(traffic: Traffic, cl: Client, held: Held) -> list[Any]:
    """The conversation in order, each message once; the ids the API lists."""
    c = cl.client
    status, body = await traffic.send(cl, "read", "GET", "/api/chat/messages",
                                      params={"session_id": c.session_id}, record=False)
    items = body.get("messages") if isinstance(body, dict) else None
    if status != 200 or not isinstance(items, list):
        traffic.problem(cl, f"GET /api/chat/messages answered {status}: {str(body)[:200]}")
        items = []
    ids = [i.get("id") for i in items if isinstance(i, dict)]
    dup = [k for k, n in Counter(ids).items() if n > 1]
    if dup:
        traffic.report.duplicated += len(dup)
        traffic.problem(cl, f"the API lists {dup} more than once")
    if ids != [m["id"] for m in c.history]:
        traffic.problem(cl, f"the API lists {ids}, the client holds "
                        f"{[m['id'] for m in c.history]}")
    for item in items:
        mine = held.get(item.get("id")) if isinstance(item, dict) else None
        if mine is not None and (item.get("content") != mine["content"]
                                 or item.get("error") is not bool(mine.get("error"))):
            traffic.problem(cl, f"the API returns {item.get('id')} with other content or "
                            "error flag than the client stored")
    return ids


async def _check_api_stats(traffic: Traffic, cl: Client, expected: tuple[int, int]) -> bool:
    """The API's ``message_count`` and ``total_tokens`` of the session; whether exact."""
    status, body = await traffic.send(cl, "read", "GET", "/api/chat/session",
                                      params={"id": cl.client.session_id}, record=False)
    session = body.get("session") if isinstance(body, dict) else None
    got = ((session.get("message_count"), session.get("total_tokens"))
           if isinstance(session, dict) else None)
    if got != expected:
        traffic.problem(cl, f"GET /api/chat/session: message_count, total_tokens = {got} "
                        f"(status {status}), expected {expected}")
        return False
    return True


# -- against the database ----------------------------------------------------------------


def _check_rows(traffic: Traffic, cl: Client, held: Held, rows: list[Row]) -> None:
    """The same rows as the client holds: none lost, none extra, each as the client stored it."""
    report = traffic.report
    report.stored += len(rows)
    stored = {r["id"]: r for r in rows}
    lost = sorted(set(held) - set(stored))
    extra = sorted(set(stored) - set(held))
    report.lost += len(lost)
    report.duplicated += len(extra)
    if lost:
        traffic.problem(cl, f"lost in the database: {lost}")
    if extra:
        traffic.problem(cl, f"in the database but never sent: {extra}")
    for mid in set(held) & set(stored):
        row, mine = stored[mid], held[mid]
        if (row["content"] != mine["content"]
                or (row["error_message"] is not None) != bool(mine.get("error"))):
            traffic.problem(cl, f"row {mid} differs from what the client stored")


def _check_db_stats(traffic: Traffic, cl: Client, session: Row | None,
                    expected: tuple[int, int]) -> bool:
    """The session's row: exact stats, owned by the client's user; whether the stats are exact."""
    if session is None:
        traffic.problem(cl, "no chat_sessions row")
        return False
    got = (session["message_count"], int(session["total_tokens"]))
    if got != expected:
        traffic.problem(cl, f"stats in the database: message_count, total_tokens = "
                        f"{got}, expected {expected}")
    if session["user_id"] != cl.user_id:
        traffic.problem(cl, f"session owned by {session['user_id']}, not {cl.user_id}")
    return got == expected
