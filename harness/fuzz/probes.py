"""Checks that send requests of their own after an answer (schemathesis runs them too).

A generated request shows what one call answers; the contract also says what
must hold *across* calls, and these probes ask:

- ``chat_idempotent_sync``: an accepted ``POST /api/chat/messages`` is sent
  again byte for byte (accepted again, the same messages), then with every
  content changed (accepted; the new content reads back, and the stats follow
  it), then as first sent (C-MSG-2, C-MSG-7). The second store of an id is
  where an INSERT-not-upsert backend answers 500 and an insert-or-keep one
  keeps the old text.
- ``chat_store_reads_back``: after an accepted store, one more message dated
  before the others is stored, and the session reads back with every message
  as sent (C-MSG-4, C-MSG-10), in timestamp order (C-MSG-9), and with stats
  that count what it holds (C-MSG-7).
- ``chat_refused_store_writes_nothing``: a batch refused while being
  written (409, 422) is sent again under fresh ids, and none of them may
  read back (C-MSG-3).
- ``chat_foreign_session``: what the tester read or stored into, the peer (a
  second generated user) gets 404 for (C-AUTH-2). A class, configured with
  the peer's ``Authorization`` (schemathesis hands a check's
  ``[checks.<name>]`` settings to its constructor); off without a peer.

Every probe request carries the tester's own headers and counts against no
schemathesis limit: each accepted store costs about ten more requests (see
docs/guides/generated-tests.md, for staging).
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import schemathesis

from harness.contract import oracle
from harness.contract.oracle import format_ts, parse_ts
from harness.fuzz.checks import (
    SYNC_PATH,
    body_of,
    messages_of,
    path_of,
    request_json,
    sent_bytes,
)
from harness.scenario.match import short

if TYPE_CHECKING:
    import httpx
    from schemathesis import Case, CheckContext, Response

TIMEOUT_S = 30.0
READS = ("/api/chat/messages", "/api/chat/session")  # GET by id: the owner's only
EDITED = "edited by chat-harness"


def _accepted_store(response: Response) -> bool:
    return (str(response.request.method) == "POST" and path_of(response) == SYNC_PATH
            and 200 <= response.status_code < 300)


def _send(response: Response, method: str, url: str, *, content: bytes | None = None,
          params: dict[str, str] | None = None, authorization: str | None = None
          ) -> httpx.Response:
    """One request with the tester's headers (or another ``authorization``)."""
    import httpx

    headers = {k: v.decode() if isinstance(v, bytes) else v
               for k, v in response.request.headers.items()
               if k.lower() not in ("content-length", "content-type")}
    if authorization is not None:
        headers["Authorization"] = authorization
    if content is not None:
        headers["Content-Type"] = "application/json"
    try:
        return httpx.request(method, url, content=content, params=params, headers=headers,
                             timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise AssertionError(f"{method} {url} (a probe) got no answer: {exc}") from None


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text


def _items(body: Any) -> list[dict[str, Any]] | None:
    items = body.get("messages") if isinstance(body, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None


def _store(response: Response, content: bytes, what: str,
           why: str = "C-MSG-2: storing a stored id updates it, never fails",
           ) -> list[dict[str, Any]] | None:
    answer = _send(response, "POST", str(response.request.url), content=content)
    if not 200 <= answer.status_code < 300:
        raise AssertionError(f"the sync was accepted ({response.status_code}); {what} it got "
                             f"{answer.status_code}: {short(answer.text, 300)} ({why})")
    return _items(_json(answer))


@schemathesis.check
def chat_idempotent_sync(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """C-MSG-2: sent again it is accepted again; sent with new content, the content changes."""
    body = request_json(response)
    if not _accepted_store(response) or not isinstance(body, dict):
        return None
    first = _items(body_of(response))
    again = _store(response, sent_bytes(response), "sent again as is,")
    if [i.get("id") for i in again or []] != [i.get("id") for i in first or []]:
        raise AssertionError("the sync sent again answered other messages: "
                             f"{[i.get('id') for i in first or []]} then "
                             f"{[i.get('id') for i in again or []]} (C-MSG-2)")
    edited = copy.deepcopy(body)
    for message in messages_of(edited):
        message["content"] = EDITED
    items = _store(response, json.dumps(edited).encode(), "sent with other content,")
    problems = [f"the answer has the old content of {i.get('id')}" for i in items or []
                if i.get("content") != EDITED]
    if not problems:  # what the edit left in the session, stats included
        problems = _read_back(response, edited)
    _store(response, sent_bytes(response), "sent as first sent after an edit,")
    if problems:
        raise AssertionError("after a sync with new content for stored ids: "
                             + "; ".join(problems[:4]) + " (C-MSG-2: the last write wins)")
    return None


@schemathesis.check
def chat_store_reads_back(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """C-MSG-4/7/9/10: stored messages read back as sent, in timestamp order, counted.

    First one more message is stored, a minute before the earliest one sent,
    so that storage order and timestamp order differ (C-MSG-9 sorts by time).
    """
    body = request_json(response)
    if not _accepted_store(response) or not isinstance(body, dict):
        return None
    known = [t for t in (parse_ts(m.get("timestamp")) for m in messages_of(body)) if t is not None]
    if known and min(known).year > 1:
        earlier = {"sessionId": body.get("sessionId"), "message": {
            "id": f"msg-chat-harness-earlier-{uuid.uuid4().hex[:12]}", "role": "user",
            "content": "stored later, dated earlier",
            "timestamp": format_ts(min(known) - timedelta(minutes=1))}}
        _store(response, json.dumps(earlier).encode(), "a message dated earlier stored after",
               "C-MSG-1: a valid message of the caller's session is stored")
    problems = _read_back(response, body)
    if problems:
        raise AssertionError(f"after the store, session {body.get('sessionId')!r}: "
                             + "; ".join(problems[:4]))
    return None


@schemathesis.check
def chat_refused_store_writes_nothing(ctx: CheckContext, response: Response, case: Case
                                      ) -> bool | None:
    """C-MSG-3: a batch refused while being written (409, 422) leaves nothing behind.

    The refused batch is sent again under fresh ids (references inside it
    renamed alike, so it is refused the same way), and none of them may read
    back afterwards.
    """
    body = request_json(response)
    if (str(response.request.method) != "POST" or path_of(response) != SYNC_PATH
            or response.status_code not in (409, 422) or not isinstance(body, dict)
            or not isinstance(body.get("sessionId"), str)):
        return None
    fresh = copy.deepcopy(body)
    renamed: dict[Any, str] = {}
    for message in messages_of(fresh):
        renamed.setdefault(message.get("id"), f"msg-chat-harness-{uuid.uuid4().hex[:12]}")
    for message in messages_of(fresh):
        message["id"] = renamed[message.get("id")]
        if message.get("user_message_id") in renamed:
            message["user_message_id"] = renamed[message["user_message_id"]]
    again = _send(response, "POST", str(response.request.url),
                  content=json.dumps(fresh).encode())
    if again.status_code not in (409, 422):
        return None  # the ids were the reason (409), or it is no longer refused: no verdict
    base = str(response.request.url).removesuffix(SYNC_PATH)
    read = _send(response, "GET", base + SYNC_PATH, params={"session_id": fresh["sessionId"]})
    left = [i.get("id") for i in _items(_json(read)) or [] if i.get("id") in renamed.values()]
    if read.status_code == 200 and left:
        raise AssertionError(
            f"the batch was refused ({again.status_code}) and still stored {left[:3]}: "
            "a batch is one transaction, written whole or not at all (C-MSG-3)")
    return None


def _read_back(response: Response, body: dict[str, Any]) -> list[str]:
    """How the session of ``body`` reads back against it: messages, order, stats."""
    session = body.get("sessionId")
    if not isinstance(session, str):
        return []
    base = str(response.request.url).removesuffix(urlsplit(str(response.request.url)).path)
    read = _send(response, "GET", base + SYNC_PATH, params={"session_id": session})
    items = _items(_json(read))
    if read.status_code != 200 or items is None:
        return [f"the session reads back {read.status_code}: {short(read.text, 200)} (C-MSG-9)"]
    problems = []
    got = {i.get("id"): i for i in items}
    for mid, want in {m.get("id"): m for m in messages_of(body)}.items():
        have = got.get(mid)
        if have is None:
            problems.append(f"{mid} was stored (2xx) and does not read back (C-MSG-10)")
            continue
        changed = [k for k in ("role", "content") if have.get(k) != want.get(k)]
        if parse_ts(have.get("timestamp")) != parse_ts(want.get("timestamp")):
            changed.append("timestamp")
        if changed:
            problems.append(f"{mid} reads back with another {', '.join(changed)} "
                            "(C-MSG-4, C-MSG-10)")
    stamps = [parse_ts(i.get("timestamp")) for i in items]
    known = [s for s in stamps if s is not None]
    if known != sorted(known):
        problems.append("the conversation is not in timestamp order (C-MSG-9): "
                        + ", ".join(str(i.get("timestamp")) for i in items[:4]))
    meta = _json(_send(response, "GET", base + "/api/chat/session", params={"id": session}))
    if isinstance(meta, dict) and isinstance(meta.get("session"), dict):
        problems += [f"{p} (C-MSG-7)" for p in _stats_problems(items, meta["session"])]
    return problems


def _stats_problems(items: list[dict[str, Any]], session: dict[str, Any]) -> list[str]:
    """C-MSG-7, from the messages the session reads back with."""
    want = oracle.expected_stats(items)
    del want["last_model"]  # a read's messages may not say which model answered
    return [f"stats: {k} {session.get(k)!r}, its messages make it {v!r}"
            for k, v in want.items() if session.get(k) != v]


@schemathesis.check
class chat_foreign_session:  # snake case: a check is named by its class
    """C-AUTH-2: the peer gets 404 where the tester read or stored a session."""

    def __init__(self, peer_authorization: str = "", writes: bool = True) -> None:
        self.peer = peer_authorization
        self.writes = writes
        self.count = 0

    def after_response(self, ctx: CheckContext, response: Response, case: Case) -> bool | None:
        request, path = response.request, path_of(response)
        if not self.peer or not 200 <= response.status_code < 300:
            return None
        if str(request.method) == "GET" and path in READS:
            self._expect_404(response, "GET", str(request.url), None, "read")
        elif self.writes and _accepted_store(response):
            body = request_json(response)
            session = body.get("sessionId") if isinstance(body, dict) else None
            if isinstance(session, str):
                self.count += 1
                message = {"id": f"msg-chat-harness-peer-{self.count}", "role": "user",
                           "content": "a message of another user",
                           "timestamp": "2025-08-12T14:34:08.861Z"}
                self._expect_404(response, "POST", str(request.url),
                                 {"sessionId": session, "message": message}, "store into")
        return None

    def _expect_404(self, response: Response, method: str, url: str, body: Any,
                    what: str) -> None:
        content = None if body is None else json.dumps(body).encode()
        got = _send(response, method, url, content=content, authorization=self.peer)
        if got.status_code != 404:
            raise AssertionError(
                f"another user may {what} this session: {method} {url} with the peer's token "
                f"got {got.status_code} {short(got.text, 200)}; the contract says 404 "
                "not_found, as for a session nobody has (C-AUTH-2)")
