"""The ``context`` check (C-CHAT-3): what the backend sends the provider, call by call.

``pairing.check_context``: every provider call of a chat step asks for the
request's ``model`` with the history in chronological order (timestamp, then
position), roles and contents only, failed messages left out except the
trigger, nothing after the trigger; without history, the one message. Each
wrong context fails at its step under C-CHAT-3; the right one passes, also
where it is not the list's order and with extra fields in the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import Backend, Call, clean, contract_chat, failures, flagged, run, scenario

from harness.contract import oracle

Messages = Callable[[dict[str, Any]], list[dict[str, Any]]]
Hook = Callable[[dict[str, Any], bool, Call], httpx.Response]


def sending(messages: Messages | None = None, *, model: str | None = None,
            from_call: int = 1, **fields: Any) -> Hook:
    """A chat hook that maps the provider as the contract says, but sends it
    ``messages(body)`` and ``model`` from its ``from_call``-th call of the step on."""
    def hook(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        made = 0

        def provider(b: dict[str, Any], **kw: Any) -> Any:
            nonlocal made
            made += 1
            if made < from_call:
                return call(b)
            return call(b, messages=messages(b) if messages else None, model=model, **fields)
        return contract_chat(body, streaming, provider)
    return hook


def _pair(m: dict[str, Any]) -> dict[str, str]:
    return {"role": m["role"], "content": m["content"]}


def _ts(m: dict[str, Any]) -> datetime:
    return oracle.parse_ts(m["timestamp"]) or datetime.max.replace(tzinfo=UTC)


def _trigger(body: dict[str, Any]) -> Any:
    return oracle.expected_request_id(body)


def in_list_order(body: dict[str, Any]) -> list[dict[str, str]]:
    """Everything not failed (and the trigger), in the order of the list."""
    t = _trigger(body)
    return [_pair(m) for m in body["messages"] if not m.get("error") or m["id"] == t]


def everything(body: dict[str, Any]) -> list[dict[str, str]]:
    """The whole history as the client holds it, failed messages too."""
    return [_pair(m) for m in body["messages"]]


def no_failed_at_all(body: dict[str, Any]) -> list[dict[str, str]]:
    """Chronological, without every failed message: the retried one too."""
    return [_pair(m) for m in sorted(body["messages"], key=_ts) if not m.get("error")]


def past_the_trigger(body: dict[str, Any]) -> list[dict[str, str]]:
    """Chronological, failed ones out, but not cut at the trigger."""
    t = _trigger(body)
    return [_pair(m) for m in sorted(body["messages"], key=_ts)
            if not m.get("error") or m["id"] == t]


def by_timestamp_text(body: dict[str, Any]) -> list[dict[str, str]]:
    """Sorted by the timestamp's text, not its instant; cut at the trigger."""
    t, out = _trigger(body), []
    for m in sorted(body["messages"], key=lambda m: m["timestamp"]):
        out.append(_pair(m))
        if m["id"] == t:
            break
    return out


def ties_by_role(body: dict[str, Any]) -> list[dict[str, str]]:
    """Chronological, but ties broken by role, not position."""
    return [_pair(m) for m in sorted(body["messages"], key=lambda m: (_ts(m), m["role"]))]


def with_ids(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**m, "id": f"m{n}"} for n, m in enumerate(oracle.expected_context(body))]


def with_a_system_prompt(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are helpful."}, *oracle.expected_context(body)]


HEAD = "name: case\nmodel: m/x\n"
FAILED_THEN_NEXT = HEAD + """\
steps:
  - chat: this one fails
    provider: {status: 429}
  - chat: next one
    provider: {reply: Fine.}
"""
RETRY_AFTER_LATER = HEAD + """\
steps:
  - chat: this one fails
    provider: {status: 429}
  - chat: a later one
    provider: {reply: Later answer.}
  - retry: 1
    provider: {reply: Retried answer.}
"""
# the second message is said earlier than the first: it is the trigger, the first comes after
SAID_EARLIER = HEAD + """\
steps:
  - chat: said at 14:40
    at: "2025-08-12T14:40:00.000Z"
    provider: {reply: Answer one.}
  - chat: said at 14:30
    at: "2025-08-12T14:30:00.000Z"
    provider: {reply: Answer two.}
"""
RAW_ORDER = HEAD + """\
steps:
  - http: POST /api/chat
    body:
      message: now
      model: m/x
      current_message_id: u-now
      messages:
        - {id: u-b, role: user, content: second, timestamp: "2025-08-12T14:35:00.000Z"}
        - {id: a-b, role: assistant, content: second answer,
           timestamp: "2025-08-12T14:36:00.000Z"}
        - {id: u-a, role: user, content: first, timestamp: "2025-08-12T16:30:00+02:00"}
        - {id: a-a, role: assistant, content: first answer, timestamp: "2025-08-12T14:31:00Z"}
        - {id: u-now, role: user, content: now, timestamp: "2025-08-12T14:40:00.000Z"}
    provider: {reply: Now answered.}
"""
RAW_TIES = HEAD + """\
steps:
  - http: POST /api/chat
    body:
      message: now
      model: m/x
      messages:
        - {id: u-1, role: user, content: question, timestamp: "2025-08-12T14:30:00.000Z"}
        - {id: a-1, role: assistant, content: answer, timestamp: "2025-08-12T14:30:00.000Z"}
        - {id: u-2, role: user, content: now, timestamp: "2025-08-12T14:31:00.000Z"}
    provider: {reply: Now answered.}
"""
NO_HISTORY = HEAD + """\
steps:
  - http: POST /api/chat
    body: {message: hello, model: m/x}
    provider: {reply: Hi.}
"""
TWO_ATTEMPTS = HEAD + """\
steps:
  - chat: first
    provider: {reply: One.}
  - chat: second
    provider: [{status: 500}, {reply: Two.}]
"""


@dataclass
class Wrong:
    rule: str
    text: str
    hook: Hook
    step: int
    says: list[str] = field(default_factory=list)  # parts of the failure's message


ANOTHER_ORDER = "the messages were in another order, or carried extra fields"
WRONG = [
    Wrong("model is the request's model", FAILED_THEN_NEXT, sending(model="other/model"), 1,
          ["the provider was asked for model 'other/model', the request named 'm/x'"]),
    Wrong("the history in chronological order, not the list's", RAW_ORDER,
          sending(in_list_order), 0, ["sent the provider 5 message(s), expected 5",
                                      ANOTHER_ORDER]),
    Wrong("chronological by instant, not by the timestamp's text", RAW_ORDER,
          sending(by_timestamp_text), 0, ["sent the provider 4 message(s), expected 5"]),
    Wrong("ties by position", RAW_TIES, sending(ties_by_role), 0, [ANOTHER_ORDER]),
    Wrong("without failed messages", FAILED_THEN_NEXT, sending(everything), 1,
          ["sent the provider 2 message(s), expected 1",
           "it included a failed message ('this one fails')"]),
    Wrong("the retried failed message is sent", RETRY_AFTER_LATER, sending(no_failed_at_all), 2,
          ["sent the provider 2 message(s), expected 1"]),
    Wrong("nothing after the trigger (a retry of an earlier message)", RETRY_AFTER_LATER,
          sending(past_the_trigger), 2, ["sent the provider 3 message(s), expected 1"]),
    Wrong("nothing after the trigger (by timestamp)", SAID_EARLIER, sending(in_list_order), 1,
          ["sent the provider 3 message(s), expected 1"]),
    Wrong("roles and contents only", FAILED_THEN_NEXT, sending(with_ids), 1, [ANOTHER_ORDER]),
    Wrong("without history, the message alone", NO_HISTORY, sending(with_a_system_prompt), 0,
          ["sent the provider 2 message(s), expected 1"]),
    Wrong("every attempt sends the context (a retry after a 5xx)", TWO_ATTEMPTS,
          sending(with_ids, from_call=2), 1, ["sent the provider 3 message(s), expected 3",
                                                ANOTHER_ORDER]),
    Wrong("every attempt asks for the model", TWO_ATTEMPTS,
          sending(model="fallback/model", from_call=2), 1, ["'fallback/model'"]),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_a_wrong_context_fails_at_its_step(tmp_path: Path, wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), Backend(chat=wrong.hook))
    for part in wrong.says:
        flagged(result, "context", "C-CHAT-3", part, step=wrong.step)


def test_the_failure_shows_both_lists(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, FAILED_THEN_NEXT), Backend(chat=sending(everything)))
    (failure,) = failures(result, "context")
    assert failure.expected == ["user: 'next one'"]
    assert failure.actual == ["user: 'this one fails'", "user: 'next one'"]


def test_only_the_wrong_attempt_is_reported(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, TWO_ATTEMPTS),
                 Backend(chat=sending(model="fallback/model", from_call=2)))
    assert [(f.step, f.actual) for f in failures(result, "context")] == [(1, "fallback/model")]


RIGHT = {
    "failed messages left out": FAILED_THEN_NEXT,
    "a retried message, later ones left out": RETRY_AFTER_LATER,
    "a message said earlier than the one before it": SAID_EARLIER,
    "by instant, in other offsets, out of list order": RAW_ORDER,
    "ties by position": RAW_TIES,
    "no history": NO_HISTORY,
    "the same context on every attempt": TWO_ATTEMPTS,
}


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_right_context_passes_every_check(tmp_path: Path, text: str) -> None:
    clean(run(scenario(tmp_path, text)))


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_right_context_with_more_in_the_request_passes(tmp_path: Path, text: str) -> None:
    hook = sending(temperature=0.2, max_tokens=512, transforms=["middle-out"],
                   usage={"include": True})
    clean(run(scenario(tmp_path, text), Backend(chat=hook)))


def test_a_streaming_call_passes(tmp_path: Path) -> None:
    text = HEAD + "steps:\n  - stream: hi\n    provider: {reply: Streamed., chunk_chars: 3}\n"
    clean(run(scenario(tmp_path, text)))


def test_a_look_at_the_provider_s_models_is_not_a_context(tmp_path: Path) -> None:
    backend = Backend()

    def looks_first(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        assert backend.models() == 200
        return contract_chat(body, streaming, call)

    backend.chat = looks_first
    text = HEAD + "steps:\n  - chat: hi\n    provider: {reply: Hello.}\n"
    result = run(scenario(tmp_path, text), backend)
    assert failures(result, "context") == []
