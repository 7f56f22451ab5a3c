"""What the checks share: reading a conversation back, several sessions, long texts.

The read-back checks (order, lost, stored pairing, rows, idempotent) read each
session once, as its owner, and the first that cannot read it says so, under its
own name; every check goes on past the first answer, session or call it judged;
and what a failure shows of a long message is its first 40 characters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    Backend,
    Call,
    FakeDb,
    clean,
    contract_chat,
    error,
    flagged,
    response,
    run,
    scenario,
    success,
    with_items,
)

HEAD = "name: case\nmodel: m/x\n"
READERS = ("order", "lost", "pairing", "rows", "idempotent")  # in the order they run


def _only(check: str) -> str:
    """Every read-back check before ``check`` switched off (it reads first)."""
    off = READERS[:READERS.index(check)]
    return "checks: {" + ", ".join(f"{c}: false" for c in off) + "}\n" if off else ""


def _broken_read(session: str, backend: Backend) -> httpx.Response:
    return error(500, "internal_server_error", "the read broke")


@pytest.mark.parametrize("check", READERS)
def test_an_unreadable_conversation_is_told_once_by_the_check_that_read_it(
        tmp_path: Path, check: str) -> None:
    text = HEAD + _only(check) + "steps:\n  - chat: hi\n    provider: {reply: Hello.}\n"
    backend = Backend(read=_broken_read)
    result = run(scenario(tmp_path, text), backend, FakeDb(backend))
    readers = [f for f in result.failures if f.message.startswith("reading session ")]
    assert [(f.check, f.clause) for f in readers] == [(check, "C-MSG-9")]
    assert readers[0].message.endswith(
        "back got GET /api/chat/messages -> 500 internal_server_error")


@pytest.mark.parametrize("check", READERS)
def test_a_check_reads_a_session_as_its_owner(tmp_path: Path, check: str) -> None:
    # bob's conversation: read as alice, the backend answers 404 (C-AUTH-2)
    text = (HEAD + _only(check) + "steps:\n  - chat: hi\n    as: bob\n"
            "    provider: {reply: Hello.}\n")
    backend = Backend()
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))


TWO_SESSIONS = HEAD + """\
steps:
  - http: POST /api/chat/messages
    body:
      sessionId: conv_first
      message: {id: m_first, role: user, content: fine, timestamp: "2025-08-12T14:34:10.000Z"}
    expect: {status: 201}
  - http: POST /api/chat/messages
    body:
      sessionId: conv_second
      messages:
        - {id: m_second, role: user, content: the long question that will go missing here,
           timestamp: "2025-08-12T14:34:11.000Z"}
        - {id: m_third, role: user, content: short, timestamp: "2025-08-12T14:34:12.000Z"}
    expect: {status: 201}
"""


def _second_loses_a_message(session: str, backend: Backend) -> httpx.Response:
    answer = backend.conversation(session)
    if session != "conv_second":
        return answer
    items = [i for i in answer.json()["messages"] if i["id"] != "m_second"]
    invented = {**items[0], "id": "m_invented",
                "content": "a message nobody sent, long enough to be cut short"}
    return response(200, {"messages": [*items, invented], "count": len(items) + 1})


def test_the_second_session_is_judged_too(tmp_path: Path) -> None:
    backend = Backend(read=_second_loses_a_message)
    result = run(scenario(tmp_path, TWO_SESSIONS), backend, FakeDb(backend))
    order = flagged(result, "order", "C-MSG-9", "session conv_second: ", step=None)
    assert "missing: user m_second 'the long question that will go missi...;" in order.message
    assert ("not sent by the client: user m_invented 'a message nobody sent, long enough "
            "t..." in order.message)
    lost = flagged(result, "lost", "C-MSG-10", "message m_second (user 'the long question "
                   "that will go missi...) was stored", step=1)
    assert lost.actual is None
    flagged(result, "rows", "C-MSG-9", "session conv_second: ", step=None)
    assert not [f for f in result.failures if "conv_first" in f.message]


def test_a_message_read_back_twice_is_named(tmp_path: Path) -> None:
    twice = with_items(lambda items: [*items, items[-1]])
    result = run(scenario(tmp_path, TWO_SESSIONS), Backend(read=twice))
    order = flagged(result, "order", "C-MSG-9", "read back more than once: m_first",
                    step=None)
    assert "(1 messages expected, 2 stored)" in order.message


def test_batches_stored_at_one_instant_keep_their_order_of_first_storage(
        tmp_path: Path) -> None:
    text = HEAD + """\
steps:
  - http: POST /api/chat/messages
    body:
      sessionId: conv_tie
      messages:
        - {id: m_a, role: user, content: a, timestamp: "2025-08-12T14:34:10.000Z"}
        - {id: m_b, role: user, content: b, timestamp: "2025-08-12T14:34:10.000Z"}
  - http: POST /api/chat/messages
    body:
      sessionId: conv_tie
      messages:
        - {id: m_c, role: user, content: c, timestamp: "2025-08-12T14:34:10.000Z"}
        - {id: m_a, role: user, content: a, timestamp: "2025-08-12T14:34:10.000Z"}
"""
    clean(run(scenario(tmp_path, text)))  # a, b (batch 1), then c (first stored later)
    swapped = with_items(lambda items: [items[0], items[2], items[1]])
    result = run(scenario(tmp_path, text), Backend(read=swapped))
    assert flagged(result, "order", "C-MSG-9", "the same messages in another order",
                   step=None).actual == ["user m_a 'a'", "user m_c 'c'", "user m_b 'b'"]


def test_an_answer_without_a_reply_does_not_stop_the_envelope_check(tmp_path: Path) -> None:
    text = HEAD + ("steps:\n  - http: GET /api/chat/sessions\n    expect: {status: 4xx}\n"
                   "  - http: GET /api/chat/nope\n    expect: {status: 404}\n")

    def finish(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        if request.url.path == "/api/chat/sessions":
            raise httpx.ConnectError("the backend hung up", request=request)
        del answer.headers["x-request-id"]
        return answer

    result = run(scenario(tmp_path, text), Backend(finish=finish))
    flagged(result, "envelope", "C-ERR-1", "has no x-request-id header", step=1)


def test_a_conforming_answer_does_not_stop_the_schema_check(tmp_path: Path) -> None:
    text = HEAD + """\
steps:
  - http: POST /api/chat/messages
    body: {sessionId: conv_s, message: {id: m_1, role: user, content: hi,
                                        timestamp: "2025-08-12T14:34:10.000Z"}}
  - http: POST /api/chat/messages
    body: {sessionId: conv_s, message: {id: m_2, role: user, content: hi,
                                        timestamp: "2025-08-12T14:34:11.000Z"}}
"""
    calls: list[int] = []

    def second_is_odd(body: dict[str, Any], backend: Backend) -> httpx.Response | None:
        calls.append(1)
        if len(calls) != 2:
            return None
        answer = backend.stored(body).json()
        return response(201, {**answer, "count": "one"})

    result = run(scenario(tmp_path, text), Backend(store=second_is_odd))
    flagged(result, "schema", "C-MSG-8", "body.count: 'one' is not of type 'integer'", step=1)


def test_an_answer_with_six_problems_names_five_and_counts_the_rest(tmp_path: Path) -> None:
    text = HEAD + "steps:\n  - http: POST /api/chat/messages\n    body: {sessionId: conv_s, " \
        "message: {id: m_1, role: user, content: hi, timestamp: \"2025-08-12T14:34:10.000Z\"}}\n"

    def odd(fields: int) -> Any:
        def store(body: dict[str, Any], backend: Backend) -> httpx.Response:
            item = dict(backend.stored(body).json()["messages"][0])
            for key in ("input_tokens", "output_tokens", "total_tokens", "elapsed_ms",
                        "contentType", "error")[:fields]:
                item[key] = "odd"
            return response(201, {"messages": [item], "count": 1, "success": True})
        return store

    five = flagged(run(scenario(tmp_path, text), Backend(store=odd(5))), "schema", "C-MSG-9",
                   "does not match", step=0)
    assert "more" not in five.message and five.message.count("(") >= 5
    six = flagged(run(scenario(tmp_path, text), Backend(store=odd(6))), "schema", "C-MSG-9",
                  "; and 1 more", step=0)
    assert six.message.count("is not") >= 5


def test_a_look_at_the_models_first_does_not_stop_the_context_check(tmp_path: Path) -> None:
    backend = Backend()

    def looks_then_drops_the_history(body: dict[str, Any], streaming: bool,
                                     call: Call) -> httpx.Response:
        backend.models()
        call(body, messages=[{"role": "user", "content": body["message"]}])
        return success(body, "Hello.")

    backend.chat = looks_then_drops_the_history
    text = HEAD + ("steps:\n  - chat: first\n    provider: {reply: One.}\n"
                   "  - chat: second\n    provider: {reply: Hello.}\n")
    backend.chat = lambda b, s, c: (contract_chat(b, s, c) if b["message"] == "first"
                                    else looks_then_drops_the_history(b, s, c))
    result = run(scenario(tmp_path, text), backend)
    flagged(result, "context", "C-CHAT-3", "the backend sent the provider 1 message(s), "
            "expected 3", step=1)


def test_a_failed_message_sent_upstream_is_named_by_its_first_words(tmp_path: Path) -> None:
    text = HEAD + """\
steps:
  - chat: a failed question that is much longer than forty characters
    provider: {status: 429}
  - chat: next
    provider: {reply: Hello.}
"""

    def keeps_failed(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        if not any(m.get("error") for m in body.get("messages") or []):
            return contract_chat(body, streaming, call)
        call(body, messages=[{"role": m["role"], "content": m["content"]}
                             for m in body["messages"]])
        return success(body, "Hello.")

    result = run(scenario(tmp_path, text), Backend(chat=keeps_failed))
    flagged(result, "context", "C-CHAT-3", "it included a failed message ('a failed question "
            "that is much longe...)", step=1)


def test_a_request_id_naming_a_failed_message_of_the_body_says_so(tmp_path: Path) -> None:
    text = HEAD + """\
steps:
  - http: POST /api/chat
    body:
      message: a repeated question that is longer than forty characters
      model: m/x
      messages:
        - {id: m_failed, role: user, timestamp: "2025-08-12T14:34:10.000Z", error: true,
           content: a repeated question that is longer than forty characters}
        - {id: m_new, role: user, timestamp: "2025-08-12T14:34:11.000Z",
           content: a repeated question that is longer than forty characters}
    provider: {reply: Hello.}
"""

    def first_match(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        call(body)
        return success(body, "Hello.", request_id="m_failed")

    result = run(scenario(tmp_path, text), Backend(chat=first_match))
    flagged(result, "pairing", "C-CHAT-2", "request_id named m_failed (the failed user "
            "message at messages[0] 'a repeated question that is longer t...) instead of "
            "m_new, the last user message with this text", step=0)


def test_a_read_that_fails_only_after_the_replays_is_told_by_idempotent(tmp_path: Path) -> None:
    reads: list[int] = []

    def fails_later(session: str, backend: Backend) -> httpx.Response:
        reads.append(1)
        return backend.conversation(session) if len(reads) == 1 else _broken_read(session,
                                                                                   backend)

    text = HEAD + _only("idempotent") + "steps:\n  - chat: hi\n    provider: {reply: Hi.}\n"
    result = run(scenario(tmp_path, text), Backend(read=fails_later))
    flagged(result, "idempotent", "C-MSG-9", "reading session ", step=None)


def test_a_200_read_without_a_list_of_messages_is_unreadable(tmp_path: Path) -> None:
    def no_list(session: str, backend: Backend) -> httpx.Response:
        return response(200, {"messages": "none", "count": 0})

    text = HEAD + "steps:\n  - chat: hi\n    provider: {reply: Hi.}\n"
    flagged(run(scenario(tmp_path, text), Backend(read=no_list)), "order", "C-MSG-9",
            "reading session ", step=None)


def test_what_order_lists_is_joined_item_by_item(tmp_path: Path) -> None:
    def two_of_everything(session: str, backend: Backend) -> httpx.Response:
        items = backend.conversation(session).json()["messages"]
        odd = [{**items[0], "id": f"m_odd{n}"} for n in (1, 2)]
        return response(200, {"messages": [*items, *items, *odd], "count": 2 * len(items) + 2})

    result = run(scenario(tmp_path, TWO_SESSIONS), Backend(read=two_of_everything))
    order = flagged(result, "order", "C-MSG-9", "session conv_second: ", step=None)
    assert "read back more than once: m_second, m_third;" in order.message
    assert "user m_odd1 'the long question that will go missi...; user m_odd2 " in order.message


def test_messages_that_are_no_list_are_shown_as_sent(tmp_path: Path) -> None:
    def garbage(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        call(body, messages=body["message"])
        return success(body, "Hi.")

    text = HEAD + "steps:\n  - chat: hi there\n    provider: {reply: Hi.}\n"
    found = flagged(run(scenario(tmp_path, text), Backend(chat=garbage)), "context",
                    "C-CHAT-3", "the backend sent the provider 0 message(s), expected 1", step=0)
    assert found.actual == ["'hi there'"]
