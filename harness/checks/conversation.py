"""Conversation order (C-MSG-9) and nothing lost (C-MSG-10, C-MSG-4), via API and DB."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from harness.contract.oracle import parse_ts, same_instant
from harness.scenario.match import short

if TYPE_CHECKING:
    from harness.scenario.view import RunView

_FAR = datetime.max.replace(tzinfo=UTC)


@dataclass
class Snapshot:
    """Stored conversations as read once after the steps, shared by the checks."""

    reads: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)
    reported: set[int] = field(default_factory=set)  # id() of exchanges already failed


def owners(run: RunView) -> dict[str, str]:
    """Each session the scenario stored into, and the actor who owns it."""
    out: dict[str, str] = {}
    for chat in run.client.chats:
        if chat.sent_id is not None:
            out.setdefault(run.client.session_id, chat.actor)
    for sync in run.client.syncs:
        sid = sync.body.get("sessionId")
        if sync.accepted and isinstance(sid, str):
            out.setdefault(sid, sync.actor)
    return out


async def stored(run: RunView, state: Snapshot, session: str, actor: str,
                 *, check: str, fresh: bool = False) -> list[dict[str, Any]] | None:
    """``GET /api/chat/messages`` for ``session``; ``None`` if unreadable.

    The first check that cannot read a session reports it, under its own name;
    later ones skip that session (one problem, said once).
    """
    if not fresh and session in state.reads:
        return state.reads[session]
    ex = await run.read_messages(session, actor)
    items = ex.json().get("messages")
    if not ex.ok or not isinstance(items, list):
        if not (fresh and state.reads.get(session, []) is None):
            run.result.fail(
                check, f"reading session {session} back got {ex.brief()}",
                expected="200 with messages",
                actual={"status": ex.status, "body": ex.response_body}, clause="C-MSG-9",
            )
        state.reads[session] = None
        return None
    state.reads[session] = items
    return items


def _line(m: dict[str, Any]) -> str:
    failed = " (failed)" if m.get("error") else ""
    return f"{m.get('role')} {m.get('id')} {short(m.get('content'), 40)}{failed}"


def _missing(run: RunView, m: dict[str, Any]) -> str:
    described = run.client.describe(m["id"])
    if described.startswith("no message"):
        return _line(m)
    return f"{m['id']} ({described})"


def expected_conversation(run: RunView, session: str) -> list[dict[str, Any]]:
    """The order a correct backend returns: the client's view plus raw syncs.

    By timestamp, then order of first storage (C-MSG-9); messages the client
    holds but never stored sort by their timestamp among the others.
    """
    # A dict keeps each key where it was first put: the syncs' order is the order of
    # first storage, and messages the client holds but never stored come after them;
    # the sort is stable, so it keeps that order among equal instants.
    latest: dict[str, dict[str, Any]] = {}
    for sync in run.client.syncs:
        if sync.accepted and sync.body.get("sessionId") == session:
            for m in sync.messages():
                latest[str(m.get("id"))] = m
    if session == run.client.session_id:
        for m in run.client.history:
            latest[str(m["id"])] = m
    return sorted(latest.values(), key=lambda m: parse_ts(m.get("timestamp")) or _FAR)


async def check_order(run: RunView, state: Snapshot) -> None:
    for session, actor in owners(run).items():
        want = expected_conversation(run, session)
        got = await stored(run, state, session, actor, check="order")
        if got is None:
            continue
        want_ids = [m["id"] for m in want]
        got_ids = [m.get("id") for m in got]
        if want_ids == got_ids:
            continue
        missing = [m for m in want if m["id"] not in got_ids]
        extra = [m for m in got if m.get("id") not in want_ids]
        twice = sorted({str(i) for i in got_ids if got_ids.count(i) > 1})
        parts = []
        if twice:
            parts.append("read back more than once: " + ", ".join(twice))
        if missing:
            parts.append("missing: " + "; ".join(_missing(run, m) for m in missing))
        if extra:
            parts.append("not sent by the client: " + "; ".join(_line(m) for m in extra))
        if not parts:
            parts.append("the same messages in another order")
        run.result.fail(
            "order",
            f"session {session}: the stored conversation differs from the client's "
            f"({len(want_ids)} messages expected, {len(got_ids)} stored): " + "; ".join(parts),
            expected=[_line(m) for m in want], actual=[_line(m) for m in got],
            clause="C-MSG-9",
        )


def final_versions(run: RunView) -> dict[str, tuple[str, dict[str, Any], int | None]]:
    """Every message of an accepted sync: id -> (session, last version sent, step)."""
    out: dict[str, tuple[str, dict[str, Any], int | None]] = {}
    for sync in run.client.syncs:
        if sync.accepted:
            for m in sync.messages():
                out[str(m.get("id"))] = (str(sync.body.get("sessionId")), m, sync.step)
    return out


async def check_nothing_lost(run: RunView, state: Snapshot) -> None:
    sent = final_versions(run)
    who = owners(run)
    for mid, (session, msg, step) in sent.items():
        items = await stored(run, state, session, who.get(session, "alice"), check="lost")
        if items is None:
            continue
        row = next((i for i in items if i.get("id") == mid), None)
        if row is None:
            run.result.fail(
                "lost", f"message {mid} ({msg.get('role')} {short(msg.get('content'), 40)}) "
                f"was stored with a 2xx answer but does not read back",
                step=step, expected=msg, actual=None, clause="C-MSG-10",
            )
            continue
        diffs = [f"{k}: sent {short(msg.get(k))}, read {short(row.get(k))}"
                 for k in ("role", "content") if row.get(k) != msg.get(k)]
        if not same_instant(msg.get("timestamp"), row.get("timestamp")):
            diffs.append(f"timestamp: sent {msg.get('timestamp')}, read {row.get('timestamp')}")
        if msg.get("user_message_id") != row.get("user_message_id"):
            diffs.append(f"user_message_id: sent {msg.get('user_message_id')}, "
                         f"read {row.get('user_message_id')}")
        if diffs:
            run.result.fail("lost", f"message {mid} reads back changed: " + "; ".join(diffs),
                            step=step, expected=msg, actual=row,
                            clause="C-MSG-4" if diffs[0].startswith("timestamp") else "C-MSG-10")
    await _check_rows(run, sent)


async def _check_rows(run: RunView, sent: dict[str, tuple[str, dict[str, Any], int | None]]
                      ) -> None:
    """Below the API: the rows in Postgres say the same (session, timestamp, pairing)."""
    db = run.db
    if db is None or not sent:
        return
    rows = db.query(
        "SELECT id, session_id, role, content, message_timestamp, user_message_id "
        "FROM chat_messages WHERE id = ANY(%s)", (list(sent),),
    )
    by_id = {r["id"]: r for r in rows}
    for mid, (session, msg, step) in sent.items():
        row = by_id.get(mid)
        if row is None:
            run.result.fail("lost", f"message {mid} has no row in chat_messages",
                            step=step, expected=msg, actual=None, clause="C-MSG-10")
            continue
        diffs = []
        if row["session_id"] != session:
            diffs.append(f"session_id {row['session_id']!r}, sent to {session!r}")
        if (parse_ts(msg.get("timestamp")) is not None
                and not same_instant(msg.get("timestamp"), row["message_timestamp"])):
            diffs.append(f"message_timestamp {row['message_timestamp'].isoformat()}, "
                         f"sent {msg.get('timestamp')}")
        if row["user_message_id"] != msg.get("user_message_id"):
            diffs.append(f"user_message_id {row['user_message_id']!r}, "
                         f"sent {msg.get('user_message_id')!r}")
        if diffs:
            run.result.fail("lost", f"row {mid} in chat_messages: " + "; ".join(diffs),
                            step=step, expected=msg, actual={k: str(v) for k, v in row.items()},
                            clause="C-MSG-4" if diffs[0].startswith("message_") else "C-MSG-10")


async def check_rows(run: RunView, state: Snapshot) -> None:
    """The API shows exactly the session's rows: none hidden, none invented, same order."""
    db = run.db
    if db is None:
        return
    for session, actor in owners(run).items():
        items = await stored(run, state, session, actor, check="rows")
        if items is None:
            continue
        rows = db.query(
            "SELECT id, role, content, error_message FROM chat_messages "
            "WHERE session_id = %s ORDER BY message_timestamp, seq", (session,),
        )
        row_ids = [r["id"] for r in rows]
        api_ids = [i.get("id") for i in items]
        if row_ids != api_ids:
            hidden = [i for i in row_ids if i not in api_ids]
            invented = [i for i in api_ids if i not in row_ids]
            detail = (f"rows the API does not show: {hidden}; " if hidden else "") + (
                f"API messages with no row: {invented}" if invented else "")
            run.result.fail(
                "rows", f"session {session}: GET /api/chat/messages differs from the "
                f"chat_messages rows (by message_timestamp, then storage order): "
                + (detail or "the same messages in another order"),
                expected=row_ids, actual=api_ids, clause="C-MSG-9",
            )
            continue
        for row, item in zip(rows, items, strict=True):
            diffs = [f"{k}: row {short(row[k])}, API {short(item.get(k))}"
                     for k in ("role", "content") if row[k] != item.get(k)]
            if bool(row["error_message"] is not None) != bool(item.get("error")):
                diffs.append(f"error: row error_message {short(row['error_message'])}, "
                             f"API error {item.get('error')!r}")
            if diffs:
                run.result.fail("rows", f"message {row['id']}: the API and the row differ: "
                                + "; ".join(diffs), expected=dict(row), actual=item,
                                clause="C-MSG-10")
