"""The ``provider_script`` check (C-CHAT-3): the backend makes the calls the script plans.

``checks.expect.provider_script`` runs after every step: a provider call that
no planned answer was left for (a retry of what is never retried, a second
call for the same attempt, a call from a route that has no business calling)
fails, and so does a planned answer never asked for (a cached answer, a
5xx not retried). A backend that makes exactly the planned calls passes,
whatever it puts in them beyond the contract's context.
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
    Call,
    FakeDb,
    clean,
    contract_chat,
    error,
    failures,
    flagged,
    run,
    scenario,
    success,
)

Hook = Callable[[dict[str, Any], bool, Call], httpx.Response]

HEAD = "name: case\nmodel: m/x\n"
ONE_REPLY = HEAD + """\
steps:
  - chat: hello
    provider: {reply: Hi.}
"""
SAME_QUESTION_TWICE = HEAD + """\
steps:
  - chat: what is 2+2?
    provider: {reply: Four.}
  - chat: what is 2+2?
    provider: {reply: Four.}
"""
RATE_LIMITED = HEAD + """\
steps:
  - chat: hello
    provider: {status: 429}
"""
ONE_5XX = HEAD + """\
steps:
  - chat: hello
    provider: [{status: 500}, {reply: Second time lucky.}]
"""
RAW_STORE = HEAD + """\
steps:
  - http: POST /api/chat/messages
    body: {sessionId: raw-session, message: {id: r-1, role: user, content: hello there,
                                             timestamp: "2025-08-12T14:30:00.000Z"}}
"""


def twice_per_attempt(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
    """Answers from the first call, then calls again (to count tokens, say)."""
    answer = contract_chat(body, streaming, call)
    call(body)
    return answer


def retries_everything(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
    """Retries any failure, 429 included, three attempts in all."""
    for _ in range(3):
        sent = call(body)
        if sent.status == 200:
            return contract_chat(body, streaming, lambda b, _sent=sent, **kw: _sent)
    return error(502, "bad_gateway")


def cached() -> Hook:
    """Answers a question it saw before from its cache, without calling."""
    seen: dict[str, httpx.Response] = {}

    def hook(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        if body["message"] in seen:
            return success(body, seen[body["message"]].json()["data"]["response"])
        seen[body["message"]] = contract_chat(body, streaming, call)
        return seen[body["message"]]
    return hook


def gives_up(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
    """Never retries: one call, whatever it got."""
    sent = call(body)
    if sent.status != 200:
        return error(502, "bad_gateway")
    return contract_chat(body, streaming, lambda b, **kw: sent)


def titles_sessions(body: dict[str, Any], backend: Backend) -> httpx.Response:
    """Asks the provider for a session title when storing."""
    backend.call({"message": "Give this chat a title", "model": "m/x"})
    return backend.stored(body)


@dataclass
class Wrong:
    rule: str
    text: str
    backend: Callable[[], Backend]
    step: int
    says: str


WRONG = [
    Wrong("one call per attempt", ONE_REPLY, lambda: Backend(chat=twice_per_attempt), 0,
          "the backend called the provider 2 time(s); the step planned 1 answer(s), so 1 "
          "call(s) got no scripted answer"),
    Wrong("a 429 is never retried", RATE_LIMITED, lambda: Backend(chat=retries_everything), 0,
          "the backend called the provider 3 time(s); the step planned 1 answer(s), so 2 "
          "call(s) got no scripted answer"),
    Wrong("storing messages calls no provider", RAW_STORE,
          lambda: Backend(store=titles_sessions), 0,
          "the step planned 0 answer(s), so 1 call(s) got no scripted answer"),
    Wrong("every planned answer is asked for: no cache", SAME_QUESTION_TWICE,
          lambda: Backend(chat=cached()), 1,
          "1 planned provider answer(s) were never asked for (the backend made 0 call(s))"),
    Wrong("a 5xx is retried", ONE_5XX, lambda: Backend(chat=gives_up), 0,
          "1 planned provider answer(s) were never asked for (the backend made 1 call(s))"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[w.rule for w in WRONG])
def test_calls_other_than_the_script_s_fail_at_their_step(tmp_path: Path, wrong: Wrong) -> None:
    result = run(scenario(tmp_path, wrong.text), wrong.backend())
    flagged(result, "provider_script", "C-CHAT-3", wrong.says, step=wrong.step)


@pytest.mark.parametrize("wrong", [w for w in WRONG if w.text != ONE_5XX and
                                   w.text != RATE_LIMITED], ids=lambda w: w.rule)
def test_only_this_check_sees_it(tmp_path: Path, wrong: Wrong) -> None:
    # the answers are right: without this check nothing would notice
    result = run(scenario(tmp_path, wrong.text), wrong.backend())
    assert {f.check for f in result.failures} == {"provider_script"}


def test_it_can_be_turned_off(tmp_path: Path) -> None:
    text = ONE_REPLY.replace("steps:", "checks: {provider_script: false}\nsteps:")
    clean(run(scenario(tmp_path, text), Backend(chat=twice_per_attempt)))


RIGHT = {
    "one reply": ONE_REPLY,
    "the same question twice, asked twice": SAME_QUESTION_TWICE,
    "a 5xx retried": ONE_5XX,
    "a 429 not retried": RATE_LIMITED,
    "a stream": HEAD + "steps:\n  - stream: hi\n    provider: {reply: Streamed., chunk_chars: 2}\n",
    "dropped connections retried": HEAD + "steps:\n  - chat: hi\n    provider: "
                                   "[{disconnect: true}, {disconnect: true}, {reply: Third.}]\n",
    "no provider in the step": RAW_STORE,
}


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_the_planned_calls_pass_every_check(tmp_path: Path, text: str) -> None:
    backend = Backend()
    clean(run(scenario(tmp_path, text), backend, FakeDb(backend)))


def test_calls_with_more_in_them_pass_every_check(tmp_path: Path) -> None:
    def richer(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        return contract_chat(body, streaming,
                             lambda b, **kw: call(b, temperature=0.7, user="u-1"))

    clean(run(scenario(tmp_path, ONE_5XX), Backend(chat=richer)))


def test_a_look_at_the_provider_s_models_is_no_unplanned_call(tmp_path: Path) -> None:
    backend = Backend()

    def looks_first(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        assert backend.models() == 200
        return contract_chat(body, streaming, call)

    backend.chat = looks_first
    result = run(scenario(tmp_path, ONE_REPLY), backend)
    assert failures(result, "provider_script") == []  # (context misjudges it: test_context)
