"""What the provider mock speaks for AI SDK clients: include_usage, tools and a scripted tool
call, and side rules (a title request answered apart from the step's script), in process and
over the real provider server (the wire forms round-trip)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.errors import InvalidInput
from harness.provider import Reply, ScriptedProvider, Side, wire
from harness.provider.remote import ProviderServer

CHAT = "/api/v1/chat/completions"
ASK: dict[str, Any] = {"model": "chat-model", "messages": [{"role": "user", "content": "Hi"}]}
AI_SDK = {**ASK, "stream": True, "stream_options": {"include_usage": True},
          "tools": [{"type": "function", "function": {"name": "getWeather",
                                                      "parameters": {"type": "object"}}}],
          "tool_choice": "auto"}
TITLE = {"model": "title-model", "messages": [{"role": "user", "content": "Name this chat"}]}


def events(engine: ScriptedProvider, body: dict[str, Any]) -> list[Any]:
    out = engine.handle("POST", CHAT, {}, json.dumps(body).encode())
    assert out.status == 200
    found = []
    for _, data in out.chunks or ():
        for line in data.decode().splitlines():
            if line.startswith("data: "):
                found.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
    return found


def test_include_usage_sends_the_usage_alone_after_the_finish_chunk() -> None:
    engine = ScriptedProvider()
    engine.plan(Reply("Hello there", usage={"prompt_tokens": 4, "completion_tokens": 2,
                                            "total_tokens": 6}))
    got = events(engine, AI_SDK)
    assert got[-1] == "[DONE]"
    usage, finish = got[-2], got[-3]
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 6
    assert finish["choices"][0]["finish_reason"] == "stop" and "usage" not in finish
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in got[:-3])
    assert text == "Hello there"


def test_without_include_usage_the_last_chunk_carries_it_as_before() -> None:
    engine = ScriptedProvider()
    engine.plan(Reply("Hello"))
    got = events(engine, {**ASK, "stream": True})
    assert got[-2]["choices"][0]["finish_reason"] == "stop" and "usage" in got[-2]


def test_a_scripted_tool_call_plain_and_streamed() -> None:
    engine = ScriptedProvider()
    tool = {"name": "getWeather", "arguments": {"city": "Paris"}}
    engine.plan(Reply("", tool_calls=(tool,)))
    engine.plan(Reply("", tool_calls=(tool,)))
    plain = json.loads(engine.handle("POST", CHAT, {}, json.dumps({**AI_SDK, "stream": False})
                                     .encode()).body)
    choice = plain["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "getWeather", "arguments": '{"city": "Paris"}'}
    assert call["type"] == "function" and call["id"]
    got = events(engine, AI_SDK)
    deltas = [c["choices"][0]["delta"] for c in got if isinstance(c, dict) and c["choices"]]
    (streamed,) = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert streamed["index"] == 0 and streamed["function"]["name"] == "getWeather"
    finishes = [c["choices"][0]["finish_reason"] for c in got
                if isinstance(c, dict) and c["choices"]]
    assert finishes[-1] == "tool_calls"


def test_side_rules_answer_their_calls_without_taking_the_script() -> None:
    engine = ScriptedProvider()
    engine.begin_step(0, [(Reply("the chat answer"), None)],
                      [Side(Reply("Paris trip"), stream=False),
                       Side(Reply("never"), model="other")])
    title = json.loads(engine.handle("POST", CHAT, {}, json.dumps(TITLE).encode()).body)
    assert title["choices"][0]["message"]["content"] == "Paris trip"
    got = events(engine, AI_SDK)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in got
                   if isinstance(c, dict) and c["choices"]) == "the chat answer"
    again = json.loads(engine.handle("POST", CHAT, {}, json.dumps(TITLE).encode()).body)
    assert again["choices"][0]["message"]["content"] == "Paris trip"  # a rule answers again
    end = engine.end_step(0)
    assert [bool(c.side) for c in end.calls] == [True, False, True]
    assert end.calls[0].side == "side rule stream=False" and end.pending == []
    # a rule matched by a text of the request
    engine.begin_step(1, [], [Side(Reply("titled"), contains="Name this chat")])
    assert engine.handle("POST", CHAT, {}, json.dumps(TITLE).encode()).status == 200
    assert engine.handle("POST", CHAT, {}, json.dumps(ASK).encode()).status == 599
    assert engine.end_step(1).calls[1].side == ""


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as started:
        yield started


def test_side_rules_and_tool_calls_cross_the_wire(server: ProviderServer) -> None:
    provider = server.provider
    provider.reset()
    tool = Reply("", tool_calls=({"name": "f", "arguments": "{}", "id": "c1"},))
    assert wire.answer_from_json(json.loads(json.dumps(wire.answer_to_json(tool)))) == tool
    provider.begin_step(3, [(tool, None)], [Side(Reply("A title"), model="title-model")])
    with httpx.Client(base_url=server.base_url.removesuffix("/api/v1"), trust_env=False,
                      timeout=10) as http:
        title = http.post(CHAT, json=TITLE).json()
        chat = http.post(CHAT, json={**AI_SDK, "stream": False}).json()
    assert title["choices"][0]["message"]["content"] == "A title"
    assert chat["choices"][0]["message"]["tool_calls"][0]["id"] == "c1"
    end = provider.end_step(3)
    assert [c.side for c in end.calls] == ["side rule model='title-model'", ""]


@pytest.mark.parametrize("item", [{}, {"answer": {"kind": "reply", "content": "x"},
                                       "stream": "no"},
                                  {"answer": {"kind": "reply", "content": "x"}, "model": 3}])
def test_malformed_side_rules_are_refused(item: Any) -> None:
    with pytest.raises(InvalidInput):
        wire.side_from_json(item)
