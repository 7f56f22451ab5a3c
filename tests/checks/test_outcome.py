"""The ``outcome`` check: what the provider did decides the answer (C-CHAT-3/4/5, C-STREAM-1..3).

Every case is one provider script in a chat, stream or retry step WITHOUT an
``expect:``. A backend that maps it as the contract says passes, also when its
answer differs from the reference's in what the contract leaves free (other
texts, extra fields, key order, suggestions); each wrong answer fails at that
step, under the clause that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    Backend,
    Call,
    contract_chat,
    error,
    failures,
    run,
    scenario,
    stream_failed,
    stream_ok,
    success,
)

from harness.errors import ScenarioError

Make = Callable[[dict[str, Any]], httpx.Response]


def after(calls: int, make: Make) -> Callable[[dict[str, Any], bool, Call], httpx.Response]:
    """A chat hook that makes ``calls`` provider calls, then answers ``make(body)``."""
    def hook(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        for _ in range(calls):
            call(body)
        return make(body)
    return hook


def benign(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
    """The contract's answer with what it leaves free changed: extra fields, contentType."""
    answer = contract_chat(body, streaming, call, contentType="markdown", trace_id="t-1")
    if answer.status_code >= 400:  # another error text, an extra field, keys in another order
        doc = answer.json()
        doc = {"details": "free text", **dict(reversed(list(doc.items()))), "error": "Sorry!"}
        return httpx.Response(answer.status_code, headers=answer.headers, json=doc)
    return answer


@dataclass
class Wrong:
    name: str
    hook: Callable[[dict[str, Any], bool, Call], httpx.Response]
    clause: str
    says: str  # a part of the failure's message


@dataclass
class Case:
    rule: str
    step: str  # the step, as YAML
    wrong: list[Wrong] = field(default_factory=list)


OK = "ok text"
CASES = [
    Case("a reply is a 200 with the provider's text (C-CHAT-4)",
         "- chat: hi\n  provider: {reply: Hello there., model: p/answered, id: gen-7}",
         [Wrong("502 instead", after(1, lambda b: error(502, "bad_gateway")), "C-CHAT-4",
                "the backend answered POST /api/chat -> 502 bad_gateway"),
          Wrong("another text", after(1, lambda b: success(b, "Hello")), "C-CHAT-4",
                "data.response is not the provider's text"),
          Wrong("the request's model", after(1, lambda b: success(
              b, "Hello there.", id="gen-7")), "C-CHAT-4", "data.model is 'm/x'"),
          Wrong("no generation id", after(1, lambda b: success(
              b, "Hello there.", model="p/answered")), "C-CHAT-4", "data.id is None")]),
    Case("an answer without usage gives zeros (C-CHAT-4)",
         "- chat: hi\n  provider: {reply: No usage., no_usage: true}",
         [Wrong("made-up counts", after(1, lambda b: success(b, "No usage.")), "C-CHAT-4",
                "is not the provider's counts"),
          Wrong("no usage at all", after(1, lambda b: success(b, "No usage.", usage=None)),
                "C-CHAT-4", "data.usage needs three integer counts")]),
    Case("a 429 is a 429 with retryAfter and Retry-After (C-CHAT-5)",
         "- chat: hi\n  provider: {status: 429, retry_after: 30}",
         [Wrong("turned into a success", after(1, lambda b: success(b, OK)), "C-CHAT-5",
                "(a success)"),
          Wrong("a 502", after(1, lambda b: error(502, "bad_gateway")), "C-CHAT-5",
                "makes that 429 too_many_requests"),
          Wrong("retryAfter 60", after(1, lambda b: error(
              429, "too_many_requests", retryAfter=60, suggestions=[])), "C-CHAT-5",
                "retryAfter 30"),
          Wrong("no header", after(1, lambda b: httpx.Response(429, json={
              "error": "x", "code": "too_many_requests", "timestamp": "2025-08-12T14:34:08Z",
              "retryAfter": 30, "suggestions": []})), "C-CHAT-5", "Retry-After: 30 header"),
          Wrong("another code", after(1, lambda b: error(429, "bad_gateway", retryAfter=30)),
                "C-ERR-2", "with code 'bad_gateway'")]),
    Case("a 429 without Retry-After says 60 (C-CHAT-5)",
         "- chat: hi\n  provider: {status: 429}",
         [Wrong("retryAfter 0", after(1, lambda b: error(
             429, "too_many_requests", retryAfter=0, suggestions=[])), "C-CHAT-5",
                "retryAfter 60")]),
    Case("a 503 is a 503 with retryAfter (C-CHAT-5)",
         "- chat: hi\n  provider: {status: 503, retry_after: 5}",
         [Wrong("retried into a success", after(2, lambda b: success(b, OK)), "C-CHAT-5",
                "(a success)")]),
    Case("a 402 is a 402 (C-CHAT-5)", "- chat: hi\n  provider: {status: 402}",
         [Wrong("a 502", after(1, lambda b: error(502, "bad_gateway")), "C-CHAT-5",
                "makes that 402 payment_required")]),
    Case("a 400 is a 400 (C-CHAT-5)", "- chat: hi\n  provider: {status: 400}",
         [Wrong("a 502", after(1, lambda b: error(502, "bad_gateway")), "C-CHAT-5",
                "makes that 400 bad_request")]),
    Case("the provider's 401 is not the user's (C-CHAT-5)",
         "- chat: hi\n  provider: {status: 401}",
         [Wrong("passed on as 401", after(1, lambda b: error(401, "token_invalid")), "C-CHAT-5",
                "makes that 502 bad_gateway")]),
    Case("5xx three times is a 502 (C-CHAT-3)",
         "- chat: hi\n  provider: [{status: 500}, {status: 502}, {status: 500}]",
         [Wrong("turned into a success", after(3, lambda b: success(b, OK)), "C-CHAT-3",
                "(a success)")]),
    Case("a 5xx then a reply is a 200 (C-CHAT-3)",
         "- chat: hi\n  provider: [{status: 500}, {reply: Recovered.}]",
         [Wrong("gave up at once", after(1, lambda b: error(502, "bad_gateway")), "C-CHAT-3",
                "makes that 200")]),
    Case("a dropped connection, three times, is a 502 (C-CHAT-3)",
         "- chat: hi\n  provider: [{disconnect: true}, {disconnect: true}, {disconnect: true}]",
         [Wrong("a 504", after(3, lambda b: error(504, "gateway_timeout")), "C-CHAT-3",
                "makes that 502 bad_gateway")]),
    Case("a 200 carrying an error is a 502 (C-CHAT-5)",
         "- chat: hi\n  provider: {raw: '{\"error\": {\"code\": 500, \"message\": \"oops\"}}'}",
         [Wrong("passed on as a success", after(1, lambda b: success(b, "oops")), "C-CHAT-5",
                "(a success)")]),
    Case("a 200 with blank content is a 502 (C-CHAT-5)",
         "- chat: hi\n  provider: {reply: '  '}",
         [Wrong("an empty success", after(1, lambda b: success(b, "  ")), "C-CHAT-5",
                "(a success)")]),
    Case("no answer within PROVIDER_TIMEOUT_MS is a 504 (C-CHAT-5)",
         "- chat: hi\n  provider: {reply: too late, timeout: true}",
         [Wrong("waited for it", after(1, lambda b: success(b, "too late")), "C-CHAT-5",
                "(a success)")]),
    Case("a stream of a reply ends with __FINAL_METADATA__ (C-STREAM-1)",
         "- stream: hi\n  provider: {reply: Streamed words., chunk_chars: 4}",
         [Wrong("ended as an error", after(1, lambda b: stream_failed(
             "Streamed words.", "bad_gateway")), "C-STREAM-1", "a complete stream")]),
    Case("a 429 before the first token is the JSON 429 (C-STREAM-2)",
         "- stream: hi\n  provider: {status: 429, retry_after: 7}",
         [Wrong("a 200 stream", after(1, lambda b: stream_ok(b, OK)), "C-STREAM-2",
                "(a success)")]),
    Case("an error chunk first is mapped by its code (C-STREAM-2)",
         "- stream: hi\n  provider: {reply: never, stream_error: {after: 0, code: 402}}",
         [Wrong("a 200 stream ending in error", after(1, lambda b: stream_failed(
             "", "payment_required")), "C-STREAM-2", "makes that 402 payment_required")]),
    Case("an error chunk mid-stream ends with __STREAM_ERROR__ (C-STREAM-3)",
         "- stream: hi\n  provider: {reply: Half of it then, chunk_chars: 5,"
         " stream_error: {after: 1, code: 429}}",
         [Wrong("completed anyway", after(1, lambda b: stream_ok(b, "Half ")), "C-STREAM-3",
                "__FINAL_METADATA__ (a success)"),
          Wrong("another code", after(1, lambda b: stream_failed("Half ", "bad_gateway")),
                "C-STREAM-3", "code 'bad_gateway'")]),
    Case("a cut stream ends with __STREAM_ERROR__ bad_gateway (C-STREAM-3)",
         "- stream: hi\n  provider: {reply: Once upon a time there was, chunk_chars: 5,"
         " cut_after: 2}",
         [Wrong("completed anyway", after(1, lambda b: stream_ok(b, "Once upon ")),
                "C-STREAM-3", "the provider answered a reply cut after 2 chunk(s)")]),
    Case("no first token within PROVIDER_TIMEOUT_MS is a 504 (C-STREAM-2)",
         "- stream: hi\n  provider: {reply: too late, timeout: first_token}",
         [Wrong("a 200 stream", after(1, lambda b: stream_ok(b, "too late")), "C-STREAM-2",
                "makes that 504 gateway_timeout")]),
    Case("a gap after the first token ends with gateway_timeout (C-STREAM-3)",
         "- stream: hi\n  provider: {reply: slow and steady, chunk_chars: 5, gap_ms: 5000,"
         " first_gap_ms: 0}",
         [Wrong("completed anyway", after(1, lambda b: stream_ok(b, "slow and steady")),
                "C-STREAM-3", "__STREAM_ERROR__ 'gateway_timeout'")]),
]


def _yaml(step: str) -> str:
    body = "\n".join("  " + line for line in step.splitlines())
    return f"name: case\nmodel: m/x\nsteps:\n{body}\n"


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_the_contract_s_answer_passes(tmp_path: Path, case: Case) -> None:
    result = run(scenario(tmp_path, _yaml(case.step)), Backend(chat=contract_chat))
    assert result.failures == []


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_an_answer_differing_where_the_contract_is_free_passes(tmp_path: Path,
                                                               case: Case) -> None:
    result = run(scenario(tmp_path, _yaml(case.step)), Backend(chat=benign))
    assert result.failures == []


WRONG = [(c, w) for c in CASES for w in c.wrong]


@pytest.mark.parametrize(("case", "wrong"), WRONG, ids=[f"{c.rule}: {w.name}" for c, w in WRONG])
def test_a_wrong_answer_fails_at_its_step_under_its_clause(tmp_path: Path, case: Case,
                                                           wrong: Wrong) -> None:
    result = run(scenario(tmp_path, _yaml(case.step)), Backend(chat=wrong.hook))
    found = failures(result, "outcome")
    assert found, f"no outcome failure; got {[(f.check, f.message) for f in result.failures]}"
    assert any(wrong.says in f.message and f.clause == wrong.clause and f.step == 0
               for f in found), [(f.clause, f.message) for f in found]


def test_every_rule_has_a_wrong_answer() -> None:
    assert all(case.wrong for case in CASES)


def test_an_expect_does_not_switch_the_oracle_off(tmp_path: Path) -> None:
    # the scenario agrees with the contract; the backend turns the 429 into a success
    text = _yaml("- chat: hi\n  provider: {status: 429}\n  expect: {status: 429}")
    result = run(scenario(tmp_path, text), Backend(chat=after(1, lambda b: success(b, OK))))
    (failure,) = failures(result, "outcome")
    assert failure.clause == "C-CHAT-5" and "(a success)" in failure.message
    assert failures(result, "expect") == []  # the status is judged once


def test_a_retry_step_is_judged_too(tmp_path: Path) -> None:
    text = _yaml("- chat: hi\n  provider: {status: 503}\n"
                 "- retry: 1\n  provider: {status: 429, retry_after: 9}")

    def lying_on_retry(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        failed_before = any(m.get("error") for m in body.get("messages") or [])
        call(body)
        return success(body, OK) if failed_before else provider_error_503()

    result = run(scenario(tmp_path, text), Backend(chat=lying_on_retry))
    (failure,) = failures(result, "outcome")
    assert (failure.step, failure.clause) == (1, "C-CHAT-5")
    assert "the provider answered 429 (Retry-After 9)" in failure.message


def provider_error_503() -> httpx.Response:
    return error(503, "service_unavailable", retryAfter=60)


def test_a_success_where_a_retry_needs_a_failure_is_the_backend_s_fault(tmp_path: Path) -> None:
    # The case: the stream is cut, the backend ends it with __FINAL_METADATA__;
    # the retry of the failed message cannot run. Blamed on the backend at step 1, not
    # on the scenario file.
    text = _yaml("- stream: tell me a long story\n"
                 "  provider: {reply: Once upon a time there was, chunk_chars: 5, cut_after: 2}\n"
                 "- retry: last\n  streaming: true\n  provider: {reply: All was well.}\n"
                 "- chat: and then?\n  provider: {reply: The end.}")
    result = run(scenario(tmp_path, text),
                 Backend(chat=after(1, lambda b: stream_ok(b, "Once upon "))))
    found = failures(result, "outcome")
    assert [(f.step, f.clause) for f in found] == [(0, "C-STREAM-3"), (0, "C-STREAM-3")]
    assert found[1].message == (
        "step 1 should have failed (the provider answered a reply cut after 2 chunk(s); "
        "C-STREAM-3 makes that a 200 stream ending with __STREAM_ERROR__ bad_gateway) but "
        "the backend answered success; step 2 retries its message and was not run, nor the "
        "1 step(s) after it")
    assert [s.index for s in result.steps] == [0, 1]  # step 3 never ran
    assert failures(result, "provider_script") == []  # no noise for the step not run


def test_a_retry_of_a_step_the_contract_does_not_decide_is_the_author_s(tmp_path: Path) -> None:
    # a raw body on a stream: the contract says nothing of it, so a success is no fault
    text = _yaml("- stream: hi\n  provider: {raw: 'data: {}'}\n"
                 "- retry: last\n  provider: {reply: Again.}")
    with pytest.raises(ScenarioError) as info:
        run(scenario(tmp_path, text), Backend(chat=after(1, lambda b: stream_ok(b, OK))))
    assert "step 1's message did not fail, and its provider script does not make it fail" in (
        info.value.render())
    assert info.value.location.line == 6  # the retry step
