"""Chat-specific checks of each generated answer, registered with schemathesis.

schemathesis' own checks judge an answer against the OpenAPI description;
these judge it against the parts of the contract a schema cannot say, reusing
the harness's own oracles, so that a scenario run and a fuzz run call the
same thing a failure. They only read the request and its answer; the checks
that send requests of their own are in :mod:`harness.fuzz.probes`.

- ``chat_error_envelope``: every error has the C-ERR-1 body and a code of its
  status (C-ERR-2), every answer an ``x-request-id``; a 5xx shows no SQL or
  traceback (C-ERR-3). Reuses :func:`harness.checks.answers.envelope_problems`.
- ``chat_contract_schema``: :func:`harness.contract.openapi.validate_response`,
  which knows what schemathesis does not: the unrouted 404/405 answers, the
  stream's final line, headers that repeat a body field.
- ``chat_store_echo``: a store's answer holds what was sent: one item per
  message, same role, content and instant (C-MSG-4, C-MSG-8).
- ``chat_conversation_page``: a conversation read is sorted by timestamp,
  ``count`` is its length, and with ``since_ts`` holds only later messages
  and ``up_to_date`` exactly when empty (C-MSG-9).
- ``chat_request_id``: a completion names the message the contract's oracle
  names (:func:`harness.contract.oracle.expected_request_id`, C-CHAT-2).
- ``chat_stream_text``: a completed stream's text is its final line's
  ``response`` (C-STREAM-1).

Importing this module registers them (schemathesis keeps one global registry).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import schemathesis

from harness.checks.answers import LEAKS, envelope_problems
from harness.contract import oracle
from harness.contract.oracle import parse_ts
from harness.scenario.match import short

if TYPE_CHECKING:
    from schemathesis import Case, CheckContext, Response

SYNC_PATH = "/api/chat/messages"
CHAT_PATHS = ("/api/chat", "/api/chat/stream")


def body_of(response: Response) -> Any:
    """The parsed JSON body, else the text (a stream, an HTML error page)."""
    text = response.content.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def sent_bytes(response: Response) -> bytes:
    """The body of the request as it was sent (requests keeps str or bytes)."""
    body = response.request.body
    if isinstance(body, str):
        return body.encode()
    return body if isinstance(body, bytes) else b""


def path_of(response: Response) -> str:
    from urllib.parse import urlsplit

    return urlsplit(str(response.request.url)).path


def request_json(response: Response) -> Any:
    """The request's JSON body, or None."""
    try:
        return json.loads(sent_bytes(response) or b"null")
    except ValueError:
        return None


def messages_of(body: Any) -> list[dict[str, Any]]:
    """The messages a store body carries: its ``messages`` list, or its single ``message``."""
    if not isinstance(body, dict):
        return []
    items = body.get("messages")
    if not isinstance(items, list):  # absent or null: the single `message` form
        items = [body.get("message")]
    return [m for m in items if isinstance(m, dict)]


@schemathesis.check
def chat_error_envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """C-ERR-1/2/3: the error body, the code of its status, a request id, no leaks."""
    problems = []
    if "x-request-id" not in response.headers:
        problems.append("no x-request-id header (C-ERR-1: every answer has one)")
    if response.status_code >= 400:
        body = body_of(response)
        problems += [f"{p} (C-ERR-1/C-ERR-2)" for p in envelope_problems(response.status_code,
                                                                          body)]
        if response.status_code >= 500:
            text = body if isinstance(body, str) else json.dumps(body)
            leak = LEAKS.search(text)
            if leak:
                problems.append(f"the {response.status_code} body shows internals "
                                f"({leak.group(0)!r}; C-ERR-3)")
    if problems:
        raise AssertionError(f"{response.status_code} answer breaks the error contract: "
                             + "; ".join(problems))
    return None


@schemathesis.check
def chat_contract_schema(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """The answer matches harness/contract/openapi.yaml as the harness reads it."""
    from harness.contract.openapi import validate_response

    headers = {k: v[0] if isinstance(v, list) and v else str(v)
               for k, v in response.headers.items()}
    problems = validate_response(str(response.request.method), path_of(response),
                                 response.status_code, headers, body_of(response))
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise AssertionError("the answer does not match the contract's OpenAPI description: "
                             + "; ".join(problems[:5]) + more)
    return None


@schemathesis.check
def chat_store_echo(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """C-MSG-4/C-MSG-8: a store answers the messages it stored, as they were sent."""
    if (str(response.request.method) != "POST" or path_of(response) != SYNC_PATH
            or not 200 <= response.status_code < 300):
        return None
    body = body_of(response)
    items = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return None  # the shape is the schema checks' business
    problems = []
    if body.get("count") != len(items):
        problems.append(f"count {body.get('count')!r} for {len(items)} item(s)")
    sent = {m.get("id"): m for m in messages_of(request_json(response))}
    got = {m.get("id"): m for m in items if isinstance(m, dict)}
    if set(sent) != set(got):
        problems.append(f"sent ids {sorted(map(str, sent))}, answered {sorted(map(str, got))}")
    for mid in set(sent) & set(got):
        want, have = sent[mid], got[mid]
        for key in ("role", "content"):
            if want.get(key) != have.get(key):
                problems.append(f"{mid}: {key} sent {short(want.get(key))}, "
                                f"answered {short(have.get(key))}")
        if parse_ts(want.get("timestamp")) != parse_ts(have.get("timestamp")):
            problems.append(f"{mid}: timestamp sent {want.get('timestamp')}, answered "
                            f"{have.get('timestamp')} (C-MSG-4: kept as sent)")
    if problems:
        raise AssertionError("the store's answer differs from what was stored: "
                             + "; ".join(problems[:5]))
    return None


@schemathesis.check
def chat_conversation_page(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """C-MSG-9: sorted by timestamp, ``count`` its length; ``since_ts`` strictly after."""
    if (str(response.request.method) != "GET" or path_of(response) != SYNC_PATH
            or response.status_code != 200):
        return None
    from urllib.parse import parse_qs, urlsplit

    body = body_of(response)
    items = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return None
    problems = []
    if body.get("count") != len(items):
        problems.append(f"count {body.get('count')!r} for {len(items)} message(s)")
    stamps = [parse_ts(m.get("timestamp")) if isinstance(m, dict) else None for m in items]
    known = [s for s in stamps if s is not None]
    if known != sorted(known):
        problems.append("the messages are not in timestamp order: "
                        + ", ".join(str(m.get("timestamp")) for m in items[:6]
                                    if isinstance(m, dict)))
    since = (parse_qs(urlsplit(str(response.request.url)).query).get("since_ts") or [""])[0]
    after = parse_ts(since)
    if after is not None:
        early = [m.get("id") for m, s in zip(items, stamps, strict=True)
                 if s is not None and s <= after and isinstance(m, dict)]
        if early:
            problems.append(f"since_ts={since} returned messages at or before it: {early[:3]}")
        if body.get("up_to_date") is not (not items):
            problems.append(f"up_to_date {body.get('up_to_date')!r} with {len(items)} "
                            "message(s)")
    if problems:
        raise AssertionError("the conversation read breaks C-MSG-9: " + "; ".join(problems))
    return None


def _stream(response: Response) -> tuple[str, dict[str, Any] | None, str | None]:
    """(text, final line, problem) of a 200 stream, read as scenarios read it."""
    from harness.checks.outcome import parse_stream
    from harness.result import Exchange

    ex = Exchange(step=None, purpose="fuzz", actor="alice", method="POST", path=path_of(response),
                  request_body=None, status=200, response_body=body_of(response), headers={},
                  elapsed_ms=0)
    return parse_stream(ex)


def _chat_data(response: Response) -> dict[str, Any] | None:
    """``data`` of a completion, or the final metadata of a completed stream."""
    from harness.checks.outcome import FINAL

    if path_of(response) == "/api/chat":
        body = body_of(response)
        data = body.get("data") if isinstance(body, dict) else None
    else:
        final = _stream(response)[1]
        data = final.get(FINAL) if isinstance(final, dict) else None
    return data if isinstance(data, dict) else None


@schemathesis.check
def chat_request_id(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """C-CHAT-2: ``request_id`` is the message the contract names."""
    if (str(response.request.method) != "POST" or path_of(response) not in CHAT_PATHS
            or response.status_code != 200):
        return None
    body, data = request_json(response), _chat_data(response)
    if not isinstance(body, dict) or data is None or body.get("current_message_id") == "":
        return None  # "" is read as absent by the reference, as sent by the letter: left open
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    if any(isinstance(m, dict) and parse_ts(m.get("timestamp")) is None
           for m in messages or []):
        return None  # a timestamp the oracle cannot order: no verdict
    try:
        want = oracle.expected_request_id(body)
    except (oracle.NotApplicable, TypeError, ValueError):
        return None
    if data.get("request_id") != want:
        raise AssertionError(f"request_id is {data.get('request_id')!r}; the contract names "
                             f"{want!r} (C-CHAT-2: current_message_id, else the latest user "
                             "message with this text)")
    return None


@schemathesis.check
def chat_stream_text(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """C-STREAM-1: the text streamed before the final line is ``response``, exactly."""
    if (str(response.request.method) != "POST" or path_of(response) != "/api/chat/stream"
            or response.status_code != 200):
        return None
    from harness.checks.outcome import FINAL

    text, final, problem = _stream(response)
    if problem:
        raise AssertionError(f"the stream is malformed: {problem} (C-STREAM-1)")
    data = final.get(FINAL) if isinstance(final, dict) else None
    if isinstance(data, dict) and data.get("response") != text:
        raise AssertionError(f"the streamed text {short(text, 120)} differs from "
                             f"__FINAL_METADATA__.response {short(data.get('response'), 120)} "
                             "(C-STREAM-1)")
    return None
