"""The ``idempotent`` check (C-MSG-2): replaying the accepted syncs changes nothing.

``replay.check_idempotent`` posts every accepted sync again, then all of them
in reverse order. Each replay must answer 2xx; after the first pass the
sessions read exactly as before (the fields C-MSG-9 fixes), after the second
the same messages in the same order with the same id, role, content, instant
and pairing (a retried message may legitimately flip back to failed). A store
that is not an upsert fails; a right one passes, also when fields beyond
C-MSG-9 move or the replayed failure flips.
"""

from __future__ import annotations

import itertools
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

Store = Callable[[dict[str, Any], Backend], httpx.Response | None]

HEAD = "name: case\nmodel: m/x\n"
TWO = HEAD + """\
steps:
  - chat: first question
    provider: {reply: First answer.}
  - chat: second question
    provider: {reply: Second answer.}
"""
TIES = HEAD + """\
steps:
  - chat: tie one
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer one.}
  - chat: tie two
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer two.}
"""
RETRIED = HEAD + """\
steps:
  - chat: this one fails
    provider: {status: 429}
  - retry: last
    provider: {reply: Retried answer.}
"""
RAW = HEAD + """\
steps:
  - http: POST /api/chat/messages
    body:
      sessionId: raw-session
      messages:
        - {id: r-1, role: user, content: hello, timestamp: "2025-08-12T16:30:00.000+02:00"}
        - {id: r-2, role: assistant, content: hi, timestamp: "2025-08-12T14:31:00.000Z",
           user_message_id: r-1, total_tokens: 7}
"""


def _batch(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body.get("messages") or [body.get("message")]


def on_a_known_id(answer: Callable[[dict[str, Any], Backend], httpx.Response]) -> Store:
    """A store hook that answers ``answer`` when the batch holds an id already stored."""
    def store(body: dict[str, Any], backend: Backend) -> httpx.Response | None:
        if any(m["id"] in backend.rows for m in _batch(body)):
            return answer(body, backend)
        return None
    return store


def second_copy(body: dict[str, Any], backend: Backend) -> httpx.Response:
    """Insert, never update: a stored id gets one more row each time."""
    known = [m["id"] for m in _batch(body) if m["id"] in backend.rows]
    answer = backend.stored(body)
    for mid in known:
        backend.rows[f"{mid}#{len(backend.rows)}"] = {**backend.rows[mid],
                                                      "_seq": len(backend.rows) + 10**6}
    return answer


def tokens_added(body: dict[str, Any], backend: Backend) -> httpx.Response:
    """An upsert that adds the counts to the stored ones (total + EXCLUDED.total)."""
    before = {m["id"]: backend.rows[m["id"]]["total_tokens"]
              for m in _batch(body) if m["id"] in backend.rows}
    answer = backend.stored(body)
    for mid, tokens in before.items():
        backend.rows[mid]["total_tokens"] += tokens
    return answer


def moved_on_update(body: dict[str, Any], backend: Backend) -> httpx.Response:
    """An upsert by DELETE and INSERT: an updated row loses its first-storage place."""
    for m in _batch(body):
        backend.rows.pop(m["id"], None)
    return backend.stored(body)


def server_clock_on_update(body: dict[str, Any], backend: Backend) -> httpx.Response:
    known = {m["id"] for m in _batch(body) if m["id"] in backend.rows}
    answer = backend.stored(body)
    for mid in known:
        backend.rows[mid]["timestamp"] = "2026-01-01T00:00:00.000Z"
    return answer


@dataclass
class Wrong:
    rule: str
    text: str
    store: Store
    says: str


WRONG = [
    Wrong("a replayed sync is answered with success, not a 500", TWO,
          on_a_known_id(lambda b, _: error(500, "internal_server_error")),
          "replaying the accepted sync of step 1 again got POST /api/chat/messages -> 500 "
          "internal_server_error"),
    Wrong("a replayed sync is not a conflict with itself", RAW,
          on_a_known_id(lambda b, _: error(409, "conflict", "id exists")),
          "replaying the accepted sync of step 1 again got POST /api/chat/messages -> 409 "
          "conflict"),
    Wrong("never a second row", TWO, second_copy,
          "reads differently after replaying every sync again"),
    Wrong("an update writes the values sent, it adds nothing", RAW, tokens_added,
          "session raw-session reads differently after replaying every sync again"),
    Wrong("an update keeps the instant sent", TWO, server_clock_on_update,
          "reads differently after replaying every sync again"),
    Wrong("in any order: a row keeps its place of first storage", TIES, moved_on_update,
          "reads differently after replaying every sync in reverse order"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_a_store_that_is_not_idempotent_fails(tmp_path: Path, wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), Backend(store=wrong.store))
    flagged(result, "idempotent", "C-MSG-2", wrong.says, step=None)
    assert len(failures(result, "idempotent")) == 1  # it stops at the first difference


def test_the_steps_themselves_do_not_see_it(tmp_path: Path) -> None:
    # nothing the scenario does posts a stored id twice: only the replay shows it
    result = run(scenario(tmp_path, TIES), Backend(store=moved_on_update))
    assert {f.check for f in result.failures} == {"idempotent"}
    (failure,) = result.failures
    assert failure.expected != failure.actual
    assert sorted(failure.expected) == sorted(failure.actual)  # the same, in another order


def test_a_replay_goes_to_the_backend_for_every_accepted_sync(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, TWO))
    replays = [e for e in result.exchanges if e.purpose == "replay"]
    syncs = [e for e in result.exchanges if e.purpose == "sync"]
    bodies = [s.request_body for s in syncs]
    assert [e.request_body for e in replays] == bodies + bodies[::-1]


_clock = itertools.count()


def _updated_at(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stamp = f"2025-08-12T15:00:{next(_clock) % 60:02d}.000Z"  # moves on every read
    return [{**i, "updated_at": stamp, "revision": next(_clock)} for i in items]


RIGHT: dict[str, tuple[str, Callable[[], Backend]]] = {
    "two exchanges": (TWO, Backend),
    "ties keep their place": (TIES, Backend),
    "a retried message may flip back to failed in reverse order": (RETRIED, Backend),
    "a raw batch": (RAW, Backend),
    "fields beyond C-MSG-9 move on every write": (TWO, lambda: Backend(
        read=with_items(_updated_at))),
    "answers written otherwise": (RETRIED, lambda: Backend(store=loose_store,
                                                           read=loose_read)),
}


@pytest.mark.parametrize(("text", "make"), RIGHT.values(), ids=RIGHT.keys())
def test_an_idempotent_store_passes_every_check(tmp_path: Path, text: str,
                                                make: Callable[[], Backend]) -> None:
    backend = make()
    result = run(scenario(tmp_path, text), backend, FakeDb(backend))
    clean(result)
    assert any(e.purpose == "replay" for e in result.exchanges)


def test_the_flip_is_really_there(tmp_path: Path) -> None:
    # the case above passes for the right reason: the last replay restored the failure
    backend = Backend()
    clean(run(scenario(tmp_path, RETRIED), backend))
    user = next(r for r in backend.rows.values() if r["role"] == "user")
    assert user["error"] is True
