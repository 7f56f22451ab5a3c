"""The ``lost`` check (C-MSG-10, C-MSG-4): what was stored reads back, in the API and the rows.

``conversation.check_nothing_lost``: every message of an accepted sync (its
last version) reads back with the same id, role, content, instant and
pairing; ``_check_rows`` finds its row in ``chat_messages`` in the right
session with the same instant and pairing (a :class:`FakeDb` here). Each loss
or change fails at the step of the sync; a right read passes, also with the
instant written otherwise (offsets, finer digits cut or rounded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    Backend,
    FakeDb,
    Rows,
    clean,
    failures,
    flagged,
    loose_read,
    loose_store,
    run,
    scenario,
    with_items,
)

Items = list[dict[str, Any]]

HEAD = "name: case\nmodel: m/x\n"
EXCHANGES = HEAD + """\
steps:
  - chat: first question
    provider: {reply: First answer.}
  - chat: this one fails
    provider: {status: 429}
  - retry: 2
    provider: {reply: Retried answer.}
"""
# timestamps as a client may send them: an offset, none (UTC), finer digits
RAW = HEAD + """\
steps:
  - http: POST /api/chat/messages
    body:
      sessionId: raw-session
      messages:
        - {id: r-1, role: user, content: with an offset, timestamp: "2025-08-12T16:30:00.000+02:00"}
        - {id: r-2, role: assistant, content: no offset, timestamp: "2025-08-12T14:31:00.000",
           user_message_id: r-1}
        - {id: r-3, role: user, content: finer digits, timestamp: "2025-08-12T14:32:00.123789Z"}
"""
# the same id twice: the last write is what must read back (C-MSG-2); the replay
# check is off, since in reverse order the draft legitimately wins
EDITED = HEAD + """\
checks: {idempotent: false}
steps:
  - http: POST /api/chat/messages
    body: {sessionId: raw-session, message: {id: e-1, role: user, content: draft,
                                             timestamp: "2025-08-12T14:30:00.000Z"}}
  - http: POST /api/chat/messages
    body: {sessionId: raw-session, message: {id: e-1, role: user, content: final,
                                             timestamp: "2025-08-12T14:30:00.000Z"}}
"""
REFUSED = HEAD + """\
steps:
  - chat: kept
    provider: {reply: Kept.}
  - http: POST /api/chat/messages
    body: {sessionId: raw-session, message: {id: bad-1, role: user, content: no time}}
    expect: {status: 400}
"""


def changed(pick: Callable[[dict[str, Any]], bool], **fields: Any
            ) -> Callable[[str, Backend], httpx.Response]:
    """A read hook: the items ``pick`` chooses read back with ``fields``."""
    return with_items(lambda items: [{**i, **fields} if pick(i) else i for i in items])


def assistants(item: dict[str, Any]) -> bool:
    return item["role"] == "assistant"


def users(item: dict[str, Any]) -> bool:
    return item["role"] == "user"


def first_write_wins(body: dict[str, Any], backend: Backend) -> httpx.Response:
    """A store hook that keeps a stored row as it was (ON CONFLICT DO NOTHING)."""
    batch = body.get("messages") or [body.get("message")]
    kept = {m["id"]: dict(backend.rows[m["id"]]) for m in batch if m["id"] in backend.rows}
    answer = backend.stored(body)
    backend.rows.update(kept)
    return answer


@dataclass
class Wrong:
    rule: str
    text: str
    backend: Callable[[], Backend]
    clause: str
    step: int
    says: str


WRONG_API = [
    Wrong("a stored message reads back", EXCHANGES,
          lambda: Backend(read=with_items(lambda items: [i for i in items if users(i)])),
          "C-MSG-10", 0, "(assistant 'First answer.') was stored with a 2xx answer but does "
          "not read back"),
    Wrong("with the same role", EXCHANGES, lambda: Backend(read=changed(users, role="system")),
          "C-MSG-10", 0, "reads back changed: role: sent 'user', read 'system'"),
    Wrong("with the same content", EXCHANGES,
          lambda: Backend(read=changed(assistants, content="(edited)")), "C-MSG-10", 0,
          "reads back changed: content: sent 'First answer.', read '(edited)'"),
    Wrong("at the same instant, not the server's clock", EXCHANGES,
          lambda: Backend(read=changed(users, timestamp="2026-01-01T00:00:00.000Z")),
          "C-MSG-4", 0, "reads back changed: timestamp: sent 2025-08-12T14:34:10.361Z, read "
          "2026-01-01T00:00:00.000Z"),
    Wrong("with its pairing", EXCHANGES,
          lambda: Backend(read=changed(assistants, user_message_id=None)), "C-MSG-10", 0,
          "reads back changed: user_message_id: sent msg_"),
    Wrong("the last version sent is what reads back", EDITED,
          lambda: Backend(store=first_write_wins), "C-MSG-10", 1,
          "message e-1 reads back changed: content: sent 'final', read 'draft'"),
    Wrong("a message stored twice is owed from its last sync on", EXCHANGES,
          lambda: Backend(read=changed(lambda i: i["content"] == "this one fails",
                                       content="(lost retry)")),
          "C-MSG-10", 2, "content: sent 'this one fails', read '(lost retry)'"),
]


def hide(mid: str) -> Callable[[Rows], Rows]:
    return lambda rows: [r for r in rows if r["id"] != mid]


def set_column(mid: str, **columns: Any) -> Callable[[Rows], Rows]:
    return lambda rows: [{**r, **columns} if r["id"] == mid else r for r in rows]


@dataclass
class WrongRow:
    rule: str
    change: Callable[[Rows], Rows]
    clause: str
    step: int
    says: str


LATER = datetime(2026, 1, 1, tzinfo=UTC)
WRONG_DB = [
    WrongRow("every stored message has a row", hide("r-2"), "C-MSG-10", 0,
             "message r-2 has no row in chat_messages"),
    WrongRow("in the session it was sent to", set_column("r-1", session_id="another"),
             "C-MSG-10", 0, "row r-1 in chat_messages: session_id 'another', sent to "
             "'raw-session'"),
    WrongRow("at the instant sent", set_column("r-3", message_timestamp=LATER), "C-MSG-4", 0,
             "row r-3 in chat_messages: message_timestamp 2026-01-01T00:00:00+00:00, sent "
             "2025-08-12T14:32:00.123789Z"),
    WrongRow("with the pairing sent", set_column("r-2", user_message_id="r-3"), "C-MSG-10", 0,
             "row r-2 in chat_messages: user_message_id 'r-3', sent 'r-1'"),
]


@pytest.mark.parametrize("wrong", WRONG_API, ids=[w.rule for w in WRONG_API])
def test_a_message_lost_or_changed_in_the_api_fails_at_its_sync(tmp_path: Path,
                                                                 wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), wrong.backend())
    flagged(result, "lost", wrong.clause, wrong.says, step=wrong.step)


@pytest.mark.parametrize("wrong", WRONG_DB, ids=[w.rule for w in WRONG_DB])
def test_a_row_lost_or_changed_in_the_database_fails_at_its_sync(tmp_path: Path,
                                                                 wrong: WrongRow) -> None:
    backend = Backend()
    result = run(scenario(tmp_path, RAW), backend, FakeDb(backend, wrong.change))
    flagged(result, "lost", wrong.clause, wrong.says, step=wrong.step)
    assert [f for f in failures(result, "lost") if "reads back" in f.message] == []


def test_several_changes_are_one_failure_under_the_first_one_s_clause(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, EXCHANGES), Backend(read=changed(
        assistants, timestamp="2026-01-01T00:00:00.000Z", content="(edited)")))
    found = failures(result, "lost")
    assert [f.step for f in found] == [0, 2]  # the two answers, at their syncs
    assert all(f.clause == "C-MSG-10" and "content: sent" in f.message
               and "; timestamp: sent" in f.message for f in found)


def test_without_a_database_only_the_api_is_read(tmp_path: Path) -> None:
    backend = Backend()
    db = FakeDb(backend, hide("r-2"))
    clean(run(scenario(tmp_path, RAW), backend))  # no db given: rows not looked at
    assert db.queries == []


def _retimed(change: Callable[[str], str]) -> Callable[[str, Backend], httpx.Response]:
    return with_items(lambda items: [{**i, "timestamp": change(i["timestamp"])}
                                     for i in items])


def _finer(stamp: str, micro: int) -> str:
    return stamp[:-1] + f"{micro:03d}Z"  # .123Z -> .123789Z


RIGHT_READS: dict[str, Callable[[], Backend]] = {
    "as the contract writes it": Backend,
    "written otherwise": lambda: Backend(store=loose_store, read=loose_read),
    "finer digits kept": lambda: Backend(read=_retimed(
        lambda t: _finer(t, 789) if t.endswith(".123Z") else t)),
    "finer digits rounded": lambda: Backend(read=_retimed(
        lambda t: t.replace(".123Z", ".124Z"))),
}


@pytest.mark.parametrize("make", RIGHT_READS.values(), ids=RIGHT_READS.keys())
@pytest.mark.parametrize("text", [EXCHANGES, RAW], ids=["exchanges", "raw timestamps"])
def test_what_reads_back_right_passes_every_check(tmp_path: Path, text: str,
                                                  make: Callable[[], Backend]) -> None:
    backend = make()
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))


def test_rows_with_finer_instants_and_more_columns_pass(tmp_path: Path) -> None:
    def finer(rows: Rows) -> Rows:
        return [{**r, "metadata": {"source": "test"}, "message_timestamp":
                 r["message_timestamp"] + timedelta(microseconds=789)
                 if r["id"] == "r-3" else r["message_timestamp"]} for r in rows]

    backend = Backend()
    db = FakeDb(backend, finer)
    clean(run(scenario(tmp_path, RAW), backend, db))
    assert len(db.queries) == 2  # the rows were read: by ids, then by session


def test_the_last_write_passes(tmp_path: Path) -> None:
    backend = Backend()
    clean(run(scenario(tmp_path, EDITED), backend, FakeDb(backend)))


def test_a_refused_sync_is_not_owed(tmp_path: Path) -> None:
    def refuse_undated(body: dict[str, Any], backend: Backend) -> httpx.Response | None:
        if "timestamp" not in (body.get("message") or {"timestamp": 1}):
            return httpx.Response(400, json={"error": "message.timestamp is required",
                                             "code": "bad_request",
                                             "timestamp": "2025-08-12T14:34:08.861Z"})
        return None

    backend = Backend(store=refuse_undated)
    clean(run(scenario(tmp_path, REFUSED), backend, FakeDb(backend)))
