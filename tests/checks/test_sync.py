"""The ``sync`` check (C-MSG-8, C-MSG-2): the client's stores are accepted.

``scenario.steps.resync.sync`` posts what the client stores after each chat (the exchange, or
the failed message alone) and after a ``resync`` step; an answer other than
2xx fails at that step: under C-MSG-2 when the batch holds a message already
stored (a retry, a resync: an update never fails), else under C-MSG-8. Stores
that are accepted pass, however the answer is written.
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
    loose_store,
    run,
    scenario,
)

Store = Callable[[dict[str, Any], Backend], httpx.Response | None]

HEAD = "name: case\nmodel: m/x\n"
RETRIED = HEAD + """\
steps:
  - chat: this one fails
    provider: {status: 429}
  - retry: last
    provider: {reply: Retried answer.}
"""
RESYNC = HEAD + """\
steps:
  - chat: hello
    provider: {reply: Hi.}
  - resync: true
"""


def _batch(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body.get("messages") or [body.get("message")]


def refusing_everything(status: int, code: str) -> Store:
    return lambda body, backend: error(status, code)


def refusing_known_ids(body: dict[str, Any], backend: Backend) -> httpx.Response | None:
    """Insert only: a stored id is a conflict."""
    if any(m["id"] in backend.rows for m in _batch(body)):
        return error(409, "conflict", "message exists")
    return None


def batches_only(body: dict[str, Any], backend: Backend) -> httpx.Response | None:
    """Takes ``messages`` only, not the single ``message`` form."""
    return None if "messages" in body else error(400, "bad_request", "messages is required")


def dropping_the_connection(body: dict[str, Any], backend: Backend) -> httpx.Response:
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


@dataclass
class Wrong:
    rule: str
    text: str
    store: Store
    clause: str
    step: int
    says: str


WRONG = [
    Wrong("the exchange is stored", RESYNC, refusing_everything(500, "internal_server_error"),
          "C-MSG-8", 0, "storing messages msg_"),
    Wrong("a failed message is stored", RETRIED, refusing_everything(503, "service_unavailable"),
          "C-MSG-8", 0, "got 503 service_unavailable"),
    Wrong("the single-message form is stored", RETRIED, batches_only, "C-MSG-8", 0,
          "got 400 bad_request"),
    Wrong("a store is answered", RESYNC, dropping_the_connection, "C-MSG-8", 0,
          "got RemoteProtocolError: Server disconnected"),
    Wrong("a retried message is updated, not refused", RETRIED, refusing_known_ids, "C-MSG-2",
          1, "(the user message of step 1 'this one fails') again got 409 conflict; posting a "
          "stored id must update it, never fail"),
    Wrong("a resync is accepted", RESYNC, refusing_known_ids, "C-MSG-2", 1,
          "storing the already stored message msg_"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_a_refused_store_fails_at_its_step(tmp_path: Path, wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), Backend(store=wrong.store))
    flagged(result, "sync", wrong.clause, wrong.says, step=wrong.step)


def test_the_failure_shows_the_answer(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, RESYNC), Backend(store=refusing_known_ids))
    (failure,) = failures(result, "sync")
    assert failure.expected == "2xx"
    assert failure.actual["status"] == 409 and failure.actual["body"]["code"] == "conflict"
    assert failure.message.count("msg_") == 2  # both messages of the batch were stored before


RAW_REFUSED = HEAD + """\
steps:
  - http: POST /api/chat/messages
    body: {sessionId: raw-session, messages: []}
    expect: {status: 400}
"""
RIGHT: dict[str, tuple[str, Callable[[], Backend]]] = {
    "a retry updates the failed message": (RETRIED, Backend),
    "a resync updates the exchange": (RESYNC, Backend),
    "answers written otherwise": (RETRIED, lambda: Backend(store=loose_store)),
    "a raw store is judged by its step's expect, not as a sync": (RAW_REFUSED, Backend),
}


@pytest.mark.parametrize(("text", "make"), RIGHT.values(), ids=RIGHT.keys())
def test_an_accepted_store_passes_every_check(tmp_path: Path, text: str,
                                              make: Callable[[], Backend]) -> None:
    backend = make()
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))
