"""Reading the AI SDK 5 UI message stream as useChat reads it, and the cookies of a login."""

from __future__ import annotations

import json
from typing import Any

from harness.scenario.protocols.aisdk import cookie_pairs, normalize
from harness.scenario.protocols.uistream import parse


def sse(*parts: Any, done: bool = True) -> str:
    return "".join(f"data: {json.dumps(p)}\n\n" for p in parts) + ("data: [DONE]\n\n" if done
                                                                     else "")


def test_a_complete_answer() -> None:
    got = parse(sse({"type": "start", "messageId": "m1"}, {"type": "start-step"},
                    {"type": "text-start", "id": "t"}, {"type": "text-delta", "id": "t",
                                                         "delta": "Hel"},
                    {"type": "text-delta", "id": "t", "delta": "lo\n"},
                    {"type": "text-end", "id": "t"}, {"type": "finish-step"},
                    {"type": "finish"}, {"type": "data-chat-title", "data": "Greeting"}))
    assert (got.ok, got.text, got.message_id, got.done) == (True, "Hello\n", "m1", True)
    assert got.types[-1] == "data-chat-title" and got.problems == []


def test_an_error_part_is_a_failure_whatever_came_before() -> None:
    got = parse(sse({"type": "start"}, {"type": "text-start", "id": "t"},
                    {"type": "text-delta", "id": "t", "delta": "partial"},
                    {"type": "error", "errorText": "Oops"}))
    assert (got.ok, got.error, got.text) == (False, "Oops", "partial")


def test_framing_the_client_cannot_read_is_named() -> None:
    assert not parse(sse({"type": "start"}, {"type": "finish"}, done=False)).done
    got = parse("data: {\"type\": \"text-delta\", \"id\": \"x\", \"delta\": \"a\"}\n\n"
                "data: not json\n\ndata: {\"no\": \"type\"}\n\n")
    assert len(got.problems) == 4 and not got.ok
    assert any("without its text-start" in p for p in got.problems)
    assert any("not 'start'" in p for p in got.problems)
    assert parse({"a": 1}).problems == ["the answer is not an event stream but dict"]


def test_data_parts_may_come_before_start() -> None:
    """vercel/ai-chatbot writes data-chat-title as soon as the title is there, which may
    be before the model's start; the AI SDK client takes it."""
    answer = [{"type": "start", "messageId": "m1"}, {"type": "text-start", "id": "t"},
              {"type": "text-delta", "id": "t", "delta": "Hi"}, {"type": "text-end", "id": "t"}]
    title = {"type": "data-chat-title", "data": "Greeting"}
    got = parse(sse(title, *answer, {"type": "finish"}))
    assert (got.ok, got.problems, got.text, got.message_id) == (True, [], "Hi", "m1")
    unfinished = parse(sse(title, *answer, done=False))
    assert (unfinished.ok, unfinished.finished, unfinished.done) == (False, False, False)
    assert unfinished.problems == []
    late = parse(sse(title, {"type": "text-start", "id": "t"}, {"type": "start"},
                     {"type": "finish"}))
    assert late.problems == ["the stream starts with 'text-start', not 'start'"]
    assert not late.ok


def test_stored_rows_read_as_text_whatever_their_parts() -> None:
    row = {"id": "u1", "role": "assistant", "parts": json.dumps(
        [{"type": "step-start"}, {"type": "text", "text": "Hi"}, {"type": "data-x"}])}
    assert normalize(row) == {"id": "u1", "role": "assistant", "text": "Hi",
                              "parts": ["step-start", "text", "data-x"]}
    assert normalize({"id": 7, "role": "user", "content": "plain"})["text"] == "plain"
    assert normalize({"id": 8, "role": "assistant", "parts": []})["text"] == ""


def test_cookies_of_a_joined_set_cookie_header() -> None:
    header = ("chat_session=abc.def; Path=/; Expires=Thu, 01 Jan 2099 00:00:00 GMT; HttpOnly, "
              "other=1; Path=/")
    assert cookie_pairs(header) == ["chat_session=abc.def", "other=1"]
    assert cookie_pairs("") == []
