"""After each round of a ``parallel:`` step: what holds whatever the interleaving.

The requests of a round may reach the backend in any order; only what the
contract fixes for every order is checked, through the API (so it holds for a
``--target-url`` backend too), and through the rows where the harness has the
database:

- no request got a 5xx or no answer (C-ERR-3); each got one of the answers its
  step allows (the steps check that themselves while they run);
- every message a 2xx sync of the round stored reads back in that session, with
  its id, role, content, timestamp and pairing (C-MSG-10, C-MSG-2), unless a
  request of the round deleted the session (C-SES-4: then all of the batch or
  none of it), and it has exactly one row;
- no message id is in two sessions (C-AUTH-3), and a refused batch left nothing
  of itself where it was refused (C-MSG-3);
- each session's stats are its messages' (C-MSG-7), and every stored answer's
  ``user_message_id`` names a user message of its session (C-MSG-10).

A failure names the round (and the request, where one request is to blame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.contract import oracle
from harness.contract.oracle import same_instant
from harness.result import Check
from harness.scenario.frontend import Sync
from harness.scenario.match import short

if TYPE_CHECKING:
    from harness.result import Exchange
    from harness.scenario.model import ParallelStep
    from harness.scenario.rounds import Slot
    from harness.scenario.view import RunView

_IDENTITY = ("role", "content", "user_message_id")


@dataclass
class _Round:
    """What the requests of one round did, as the checks need it."""

    where: str
    syncs: list[tuple[Slot, Sync]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)  # sessions a 2xx DELETE removed
    sessions: dict[str, str] = field(default_factory=dict)  # session -> an actor to read it


def _route(ex: Exchange) -> str:
    return ex.path.split("?")[0]


def _collect(run: RunView, slots: list[Slot]) -> _Round:
    first = slots[0] if slots else None
    out = _Round(where=f"round {first.round} of {first.rounds}" if first else "round")
    for slot in slots:
        for ex in slot.exchanges:
            route = _route(ex)
            if ex.method == "POST" and route == "/api/chat/messages" and isinstance(
                    ex.request_body, dict):
                record = Sync(step=ex.step, actor=ex.actor, body=ex.request_body,
                              status=ex.status)
                out.syncs.append((slot, record))
                sid = ex.request_body.get("sessionId")
                if isinstance(sid, str) and (record.accepted or sid not in out.sessions):
                    out.sessions[sid] = ex.actor
            elif ex.method == "DELETE" and route == "/api/chat/sessions":
                sid = _query_id(ex)
                if sid is not None:
                    out.sessions.setdefault(sid, ex.actor)
                    if ex.ok:
                        out.deleted.add(sid)
            elif ex.method == "POST" and route in ("/api/chat/sessions", "/api/chat/session"):
                sid = ex.request_body.get("id") if isinstance(ex.request_body, dict) else None
                if isinstance(sid, str) and (ex.ok or sid not in out.sessions):
                    out.sessions[sid] = ex.actor
    return out


def _query_id(ex: Exchange) -> str | None:
    """The ``id`` a request named in its query (the runner keeps the path without it)."""
    from urllib.parse import parse_qs, urlsplit

    found = parse_qs(urlsplit(ex.path).query).get("id")
    if found:
        return found[0]
    body = ex.request_body
    return body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None


async def check_round(run: RunView, index: int, step: ParallelStep, slots: list[Slot]) -> None:
    """The invariants after one round of step ``index`` (see the module's text)."""
    for slot in slots:
        for ex in slot.exchanges:
            if ex.error or ex.status >= 500:
                allowed = ex.expected is not None and not ex.error and _allows(ex)
                if not allowed and not _reported(run, slot, ex):
                    run.result.fail(
                        Check.SERVER_ERROR, f"{slot.where}: {ex.brief()}: concurrent requests "
                        "must each be served, whatever their order (valid input is never a 5xx)",
                        step=index, expected="2xx or 4xx",
                        actual={"status": ex.status, "body": ex.response_body},
                        clause="C-ERR-3")
    state = _collect(run, slots)
    if not state.sessions:
        return
    reads = {sid: await _read(run, index, sid, actor) for sid, actor in state.sessions.items()}
    _stored(run, index, state, reads)
    _placed(run, index, state, reads)
    _paired(run, index, state, reads)
    await _stats(run, index, state, reads)
    _rows(run, index, state)


def _reported(run: RunView, slot: Slot, ex: Exchange) -> bool:
    """Whether the request's own judgement (its expect, its sync) already failed this answer."""
    return any(f.message.startswith(slot.where) and (
        (isinstance(f.actual, dict) and f.actual.get("status") == ex.status and not ex.error)
        or (ex.error is not None and f.actual is None)) for f in run.result.failures)


def _allows(ex: Exchange) -> bool:
    from harness.scenario.match import status_matches

    return ex.expected is not None and status_matches(ex.expected, ex.status)


async def _read(run: RunView, index: int, session: str, actor: str
                ) -> list[dict[str, Any]] | None:
    """The session's messages; ``None`` if it does not exist (404)."""
    ex = await run.send(index, actor, "GET", "/api/chat/messages",
                        params={"session_id": session}, purpose="read")
    items = ex.json().get("messages")
    if ex.status == 404:
        return None
    if not ex.ok or not isinstance(items, list):
        run.result.fail(Check.LOST, f"after the round, reading session {session} back got "
                        f"{ex.brief()}", step=index, expected="200 with messages, or 404",
                        actual={"status": ex.status, "body": ex.response_body},
                        clause="C-MSG-9")
        return None
    return [i for i in items if isinstance(i, dict)]


def _stored(run: RunView, index: int, state: _Round,
            reads: dict[str, list[dict[str, Any]] | None]) -> None:
    """Every message of a 2xx sync reads back where it was sent (all or none if deleted)."""
    for slot, sync in state.syncs:
        sid = sync.body.get("sessionId")
        if not sync.accepted or not isinstance(sid, str):
            continue
        items = {i.get("id"): i for i in reads.get(sid) or []}
        sent = sync.messages()
        present = [m for m in sent if m.get("id") in items]
        if sid in state.deleted:
            if present and len(present) != len(sent):
                missing = [str(m.get("id")) for m in sent if m.get("id") not in items]
                run.result.fail(
                    Check.LOST, f"{slot.where}: its batch into session {sid} raced a delete of "
                    f"the session and is half there (missing {', '.join(missing)}): a batch "
                    "is stored whole or not at all", step=index, expected="all or none",
                    actual=sorted(str(i) for i in items), clause="C-MSG-3")
            continue
        for m in sent:
            got = items.get(m.get("id"))
            if got is None:
                run.result.fail(
                    Check.LOST, f"{slot.where}: message {m.get('id')} ({m.get('role')} "
                    f"{short(m.get('content'), 40)}) was stored with {sync.status} but does "
                    f"not read back in session {sid}", step=index, expected=m, actual=None,
                    clause="C-MSG-10")
                continue
            diffs = [k for k in _IDENTITY if got.get(k) != m.get(k) and not _other_version(
                state, sid, m.get("id"), k, got.get(k))]
            if not same_instant(m.get("timestamp"), got.get("timestamp")):
                diffs.append("timestamp")
            if diffs:
                run.result.fail(
                    Check.LOST, f"{slot.where}: message {m.get('id')} reads back changed ("
                    + ", ".join(f"{k}: sent {short(m.get(k))}, read {short(got.get(k))}"
                                for k in diffs) + ")", step=index, expected=m, actual=got,
                    clause="C-MSG-10")


def _other_version(state: _Round, session: str, mid: Any, key: str, value: Any) -> bool:
    """Whether another 2xx sync of the round sent ``mid`` with this value (last write wins)."""
    return any(m.get(key) == value for _, s in state.syncs
               if s.accepted and s.body.get("sessionId") == session
               for m in s.messages() if m.get("id") == mid)


def _placed(run: RunView, index: int, state: _Round,
            reads: dict[str, list[dict[str, Any]] | None]) -> None:
    """No id in two sessions (C-AUTH-3); a refused batch left nothing of itself (C-MSG-3)."""
    where: dict[Any, list[str]] = {}
    for sid, items in reads.items():
        for item in items or []:
            where.setdefault(item.get("id"), []).append(sid)
    ids = {m.get("id") for _, s in state.syncs for m in s.messages()}
    for mid in sorted(str(i) for i in ids):
        sessions = where.get(mid, [])
        if len(sessions) > 1:
            run.result.fail(
                Check.LOST, f"{state.where}: message {mid} is stored in {len(sessions)} "
                f"sessions ({', '.join(sessions)}): an id lives in one session, a second "
                "claim is refused with 409", step=index, expected="one session",
                actual=sessions, clause="C-AUTH-3")
    accepted = {(s.body.get("sessionId"), m.get("id")) for _, s in state.syncs if s.accepted
                for m in s.messages()}
    for slot, sync in state.syncs:
        target = sync.body.get("sessionId")
        if sync.accepted or sync.status == 0 or not isinstance(target, str):
            continue
        before = _stored_before(run, target)
        for m in sync.messages():
            msg_id = m.get("id")
            if (target in where.get(msg_id, []) and (target, msg_id) not in accepted
                    and msg_id not in before):
                run.result.fail(
                    Check.LOST, f"{slot.where}: its batch was refused ({sync.status}) but "
                    f"message {msg_id} is stored in session {target}: nothing of a refused "
                    "batch is written", step=index, expected="not stored", actual=target,
                    clause="C-MSG-3")


def _stored_before(run: RunView, session: str) -> set[Any]:
    """Ids the client stored into ``session`` with a 2xx sync (any round, any step)."""
    return {m.get("id") for s in run.client.syncs
            if s.accepted and s.body.get("sessionId") == session for m in s.messages()}


def _paired(run: RunView, index: int, state: _Round,
            reads: dict[str, list[dict[str, Any]] | None]) -> None:
    """Every stored answer's user_message_id names a user message of its session."""
    for sid, items in reads.items():
        users = {i.get("id") for i in items or [] if i.get("role") == "user"}
        for item in items or []:
            paired = item.get("user_message_id")
            if item.get("role") == "assistant" and paired and paired not in users:
                run.result.fail(
                    Check.PAIRING, f"{state.where}: the stored answer {item.get('id')} in "
                    f"session {sid} is paired with {paired}, which is no user message of "
                    "that session", step=index, expected="a user message of the session",
                    actual=paired, clause="C-MSG-10")


async def _stats(run: RunView, index: int, state: _Round,
                 reads: dict[str, list[dict[str, Any]] | None]) -> None:
    """Each session's stats are those of its messages (C-MSG-7), whatever the order."""
    for sid, items in reads.items():
        if items is None:
            continue
        actor = state.sessions[sid]
        ex = await run.send(index, actor, "GET", "/api/chat/session", params={"id": sid},
                            purpose="read")
        got = ex.json().get("session")
        if ex.status == 404 and sid in state.deleted:
            continue  # deleted between the two reads: nothing to count
        if not ex.ok or not isinstance(got, dict):
            run.result.fail(Check.STATS, f"{state.where}: reading session {sid} got "
                            f"{ex.brief()}", step=index, expected="200 with the session",
                            actual=ex.response_body, clause="C-SES-3")
            continue
        want = oracle.expected_stats(items)
        diffs = [f"{k} {got.get(k)!r}, its messages make it {v!r}" for k, v in want.items()
                 if got.get(k) != v]
        if diffs:
            run.result.fail(
                Check.STATS, f"{state.where}: session {sid} has stats that are not its "
                "messages' (a lost update of concurrent batches?): " + "; ".join(diffs),
                step=index, expected=want, actual={k: got.get(k) for k in want},
                clause="C-MSG-7")


def _rows(run: RunView, index: int, state: _Round) -> None:
    """Below the API: one row per id, and no row of a session that does not exist."""
    db = run.db
    if db is None:
        return
    ids = sorted({str(m.get("id")) for _, s in state.syncs for m in s.messages()})
    if ids:
        rows = db.query("SELECT id, count(*) AS n FROM chat_messages WHERE id = ANY(%s) "
                        "GROUP BY id HAVING count(*) > 1", (ids,))
        for row in rows:
            run.result.fail(Check.ROWS, f"{state.where}: message {row['id']} has {row['n']} "
                            "rows in chat_messages", step=index, expected=1, actual=row["n"],
                            clause="C-MSG-2")
    sessions = sorted(state.sessions)
    orphans = db.query(
        "SELECT m.session_id, count(*) AS n FROM chat_messages m LEFT JOIN chat_sessions s "
        "ON s.id = m.session_id WHERE m.session_id = ANY(%s) AND s.id IS NULL "
        "GROUP BY m.session_id", (sessions,))
    for row in orphans:
        run.result.fail(Check.ROWS, f"{state.where}: {row['n']} message row(s) of session "
                        f"{row['session_id']}, which does not exist (orphans of a delete "
                        "that raced a sync)", step=index, expected=0, actual=row["n"],
                        clause="C-SES-4")


__all__ = ["check_round"]
