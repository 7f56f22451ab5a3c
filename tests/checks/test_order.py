"""The ``order`` check (C-MSG-9): a stored conversation reads back as the client holds it.

``conversation.check_order``: every session the scenario stored into reads
back (200) with exactly the client's messages, by timestamp, ties broken by
the order of first storage (within a batch, the batch's order). A reading
that is refused, or misses, invents or reorders messages, fails under C-MSG-9;
the right order passes, also where it is not the order things were sent in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    Backend,
    FakeDb,
    clean,
    error,
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
TWO = HEAD + """\
steps:
  - chat: first question
    provider: {reply: First answer.}
  - chat: second question
    provider: {reply: Second answer.}
"""
# said earlier than the message before it: sent (and stored) last, read back first
SAID_EARLIER = HEAD + """\
steps:
  - chat: said at 14:40
    at: "2025-08-12T14:40:00.000Z"
    provider: {reply: Answer one.}
  - chat: said at 14:30
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer two.}
"""
# two exchanges at the same instants: ties, in the order of first storage
TIES = HEAD + """\
steps:
  - chat: tie one
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer one.}
  - chat: tie two
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer two.}
"""
# the retried message ties with the one after it: its FIRST storage (step 1) counts
RETRIED_TIE = HEAD + """\
steps:
  - chat: fails first
    at: "2025-08-12T14:30:00.000Z"
    provider: {status: 429}
  - chat: same instant
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer.}
  - retry: 1
    provider: {reply: Retried.}
"""
# a raw batch into another session, out of order, in other offsets, with a tie
RAW_BATCH = HEAD + """\
steps:
  - http: POST /api/chat/messages
    body:
      sessionId: raw-session
      messages:
        - {id: x-2, role: user, content: second of the tie, timestamp: "2025-08-12T16:30:00+02:00"}
        - {id: x-1, role: user, content: first of the tie, timestamp: "2025-08-12T14:30:00.000Z"}
        - {id: x-0, role: user, content: earliest, timestamp: "2025-08-12T14:29:59.999Z"}
"""


def by_id(items: Items) -> Items:
    return sorted(items, key=lambda i: (i["timestamp"], i["id"]))


def by_storage(backend: Backend) -> Callable[[str, Backend], httpx.Response]:
    """A read hook: the session's items in the order they were stored, timestamps ignored."""
    def read(session: str, b: Backend) -> httpx.Response:
        rows = sorted((r for r in b.rows.values() if r["_session"] == session),
                      key=lambda r: r["_seq"])
        items = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        return httpx.Response(200, json={"messages": items, "count": len(items)})
    return read


def ties_last_stored_first(items: Items) -> Items:
    out: Items = []
    for item in items:  # stable: insert before the equal-timestamp run
        at = next((n for n, o in enumerate(out) if o["timestamp"] == item["timestamp"]),
                  len(out))
        out.insert(at, item)
    return out


def moved_on_update(body: dict[str, Any], backend: Backend) -> httpx.Response:
    """A store hook that upserts by DELETE and INSERT: an updated row is stored anew."""
    for m in body.get("messages") or [body.get("message")]:
        backend.rows.pop(m["id"], None)
    return backend.stored(body)


def invent(items: Items) -> Items:
    extra = {**items[0], "id": "msg-server-1", "role": "system", "content": "Welcome!"}
    return [extra, *items]


@dataclass
class Wrong:
    rule: str
    text: str
    backend: Callable[[], Backend]
    says: str


WRONG = [
    Wrong("by timestamp, not in the order stored", SAID_EARLIER,
          lambda: Backend(read=by_storage(Backend())), "the same messages in another order"),
    Wrong("ties by the order of first storage, not last first", TIES,
          lambda: Backend(read=with_items(ties_last_stored_first)),
          "the same messages in another order"),
    Wrong("ties by the order of FIRST storage: an update keeps its place", RETRIED_TIE,
          lambda: Backend(store=moved_on_update), "the same messages in another order"),
    Wrong("within a batch, ties in the batch's order, not by id", RAW_BATCH,
          lambda: Backend(read=with_items(by_id)), "session raw-session: the stored "
          "conversation differs from the client's (3 messages expected, 3 stored): the same "
          "messages in another order"),
    Wrong("every message the client stored", TWO,
          lambda: Backend(read=with_items(lambda items: items[1:])),
          "(4 messages expected, 3 stored): missing: msg_"),
    Wrong("only the client's messages", TWO, lambda: Backend(read=with_items(invent)),
          "not sent by the client: system msg-server-1 'Welcome!'"),
    Wrong("a stored session reads back", TWO,
          lambda: Backend(read=lambda s, b: error(500, "internal_server_error")),
          "back got GET /api/chat/messages -> 500 internal_server_error"),
    Wrong("a stored session is not unknown", TWO,
          lambda: Backend(read=lambda s, b: error(404, "not_found")),
          "back got GET /api/chat/messages -> 404 not_found"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_a_wrong_reading_fails(tmp_path: Path, wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), wrong.backend())
    failure = flagged(result, "order", "C-MSG-9", wrong.says, step=None)
    assert failure.message.startswith(("session ", "reading session "))


def test_a_missing_message_is_named_by_its_step(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, TWO), Backend(read=with_items(lambda items: items[1:])))
    (failure,) = failures(result, "order")
    assert failure.message.endswith("missing: " + str(failure.expected[0]).split()[1]
                                    + " (the user message of step 1 'first question')")
    assert len(failure.expected) == 4 and len(failure.actual) == 3


def test_the_order_is_shown_both_ways(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, SAID_EARLIER), Backend(read=by_storage(Backend())))
    (failure,) = failures(result, "order")
    assert failure.expected[0].endswith("'said at 14:30'")
    assert failure.actual[0].endswith("'said at 14:40'")


RIGHT = {
    "two exchanges": TWO,
    "a message said earlier reads back first": SAID_EARLIER,
    "ties in the order stored": TIES,
    "a retried message keeps its place among ties": RETRIED_TIE,
    "a raw batch: by instant, then the batch's order": RAW_BATCH,
}


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_right_order_passes_every_check(tmp_path: Path, text: str) -> None:
    backend = Backend()
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_right_order_written_otherwise_passes_every_check(tmp_path: Path,
                                                              text: str) -> None:
    backend = Backend(store=loose_store, read=loose_read)
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))


def test_the_check_reads_each_session_once(tmp_path: Path) -> None:
    backend = Backend()
    result = run(scenario(tmp_path, TWO), backend)
    reads = [e for e in result.exchanges if e.purpose == "read"]
    assert len(reads) == 3  # the checks' read, then one after each replay pass
    assert reads[0].response_body["count"] == 4
