"""The protocol-neutral invariants (I-*), proven both ways over an in-memory AI SDK backend.

Each invariant fails a backend with the bug it is there for (aisdkkit's ``bugs``)
and passes correct backends that differ from the example app (aisdkkit's
``variant``s: stored step-start parts and the title part elsewhere in the
stream, the title part before ``start``, an error status instead of an error
part, a system prompt and content as parts, a cookie login).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aisdkkit import VARIANTS, AiSdkBackend, clean, flagged, run, scenario

HEAD = "name: case\nmodel: m/x\nprotocol: ai-sdk\n"
CONVERSATION = HEAD + """\
steps:
  - chat: first question
    provider: {reply: First answer.}
  - chat: second question
    provider: {reply: Second answer.}
"""
FAILURE_THEN_RESEND = HEAD + """\
steps:
  - chat: first question
    provider: {reply: First answer.}
  - chat: this one fails
    provider: {status: 500, error: upstream down}
  - retry: 2
    provider: {reply: Retried answer.}
    expect:
      provider:
        messages:
          - {role: user, content: first question}
          - {role: assistant, content: First answer.}
          - {role: user, content: this one fails}
  - resync
"""
CUT_THEN_RESEND = HEAD + """\
steps:
  - stream: tell a story
    provider: {reply: "Once upon a time there was a stream.", cut_after: 2}
  - retry: last
    streaming: true
    provider: {reply: Once upon a time.}
"""
OTHER_USER = HEAD + """\
steps:
  - chat: mine
    provider: {reply: Yours.}
  - chat: let me in
    as: mallory
  - resync
"""


@pytest.mark.parametrize("variant", [(), *[(v,) for v in VARIANTS]])
@pytest.mark.parametrize("text", [CONVERSATION, FAILURE_THEN_RESEND, CUT_THEN_RESEND, OTHER_USER],
                         ids=["conversation", "failure-resend", "cut-resend", "other-user"])
def test_correct_backends_pass(tmp_path: Path, text: str, variant: tuple[str, ...]) -> None:
    clean(run(scenario(tmp_path, text), AiSdkBackend(variant=frozenset(variant))))


@pytest.mark.parametrize(("bug", "text", "check", "says"), [
    ("duplicate-key-resend", FAILURE_THEN_RESEND, "I-RESEND", "failed"),
    ("empty-assistant-row", FAILURE_THEN_RESEND, "I-ORDER", "no text is stored"),
    ("title-in-context", CONVERSATION, "I-CONTEXT", "(empty)"),
    ("lost-user-message", FAILURE_THEN_RESEND, "I-LOST", "is not stored"),
    ("other-user-chat", OTHER_USER, "I-OWNER", "not a refusal"),
    ("cut-stream-stored-as-done", CUT_THEN_RESEND, "outcome", "the provider failed"),
    ("duplicate-context", FAILURE_THEN_RESEND, "I-CONTEXT", "extra user message"),
    ("wrong-answer-id", CONVERSATION, "I-PAIR", "not under the id the stream announced"),
    ("answer-of-other-turn", CONVERSATION, "I-PAIR", "not the provider's answer"),
    ("unfinished-stream", CONVERSATION, "outcome", "the stream did not finish"),
])
def test_each_bug_is_caught(tmp_path: Path, bug: str, text: str, check: str, says: str) -> None:
    result = run(scenario(tmp_path, text), AiSdkBackend(bugs=frozenset({bug})))
    flagged(result, check, says)
    assert all(f.clause == f.check for f in result.failures if f.check.startswith("I-"))


def test_a_title_first_stream_must_still_finish(tmp_path: Path) -> None:
    """The title part before ``start`` is accepted (the variant passes above); a stream
    that starts so but ends without ``finish`` and ``[DONE]`` still fails its turn."""
    backend = AiSdkBackend(bugs=frozenset({"unfinished-stream"}),
                           variant=frozenset({"title-first"}))
    result = run(scenario(tmp_path, CONVERSATION), backend)
    flagged(result, "outcome", "the stream did not finish")
    assert not any("not 'start'" in f.message for f in result.failures)


def test_the_title_request_is_a_side_call(tmp_path: Path) -> None:
    """The new chat's title request is answered by the ai-sdk default side rule: it takes
    no planned answer, and expect.provider counts the chat call only."""
    text = HEAD + """\
steps:
  - chat: hello
    provider: {reply: Hi.}
    expect:
      provider: {calls: 1, stream: true}
"""
    backend = AiSdkBackend()
    result = run(scenario(tmp_path, text), backend)
    clean(result)
    sides = [c for c in backend.engine.calls if c.side]
    assert len(sides) == 1 and sides[0].body["model"] == "title-model"
    assert "A chat title" in sides[0].answer


def test_a_contract_scenario_is_skipped_by_an_ai_sdk_run(tmp_path: Path) -> None:
    from harness.config import RunConfig
    from harness.runner.session import Harness

    contract = scenario(tmp_path, "name: c\nmodel: m\nsteps:\n  - chat: hi\n")
    config = RunConfig(protocol="ai-sdk", target_url="http://127.0.0.1:9", target="url")
    result = Harness(config).run(contract)
    assert result.skipped is not None and "speaks contract" in result.skipped


def test_a_profile_model_is_sent_by_every_turn(tmp_path: Path) -> None:
    """An app that accepts only its own model ids: the profile's model is selectedChatModel."""
    backend = AiSdkBackend()
    clean(run(scenario(tmp_path, CONVERSATION), backend, model="app-model"))
    chat_calls = [c for c in backend.engine.calls if not c.side]
    assert [c.model for c in chat_calls] == ["app-model", "app-model"]


DOUBLE_SUBMIT = HEAD + """\
steps:
  - parallel:
      - chat: "tab one: hello"
        provider: {reply: Hello.}
      - chat: "tab two: hello"
        provider: {reply: Hello.}
  - parallel:
      - retry: last
        provider: {reply: Here it is.}
      - retry: last
        provider: {reply: Here it is.}
    before:
      - chat: "round ${round}: this one fails"
        provider: {status: 400}  # the kit retries a 5xx three times, as the AI SDK does
    rounds: 2
  - chat: thanks
    provider: {reply: Welcome.}
"""


@pytest.mark.parametrize("variant", [(), ("title-first",), ("step-start-parts",)])
def test_concurrent_turns_and_a_double_submit_pass_a_correct_backend(
        tmp_path: Path, variant: tuple[str, ...]) -> None:
    """Inside parallel: the stored order among concurrent turns is the backend's, and a
    message resent twice at once may keep both answers (this backend) or one."""
    clean(run(scenario(tmp_path, DOUBLE_SUBMIT), AiSdkBackend(variant=frozenset(variant))))


def test_a_double_submit_that_fails_on_the_key_is_caught(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, DOUBLE_SUBMIT),
                 AiSdkBackend(bugs=frozenset({"duplicate-key-resend"})))
    flagged(result, "I-RESEND", "failed")
    assert {f.step for f in result.failures if f.check == "I-RESEND"} == {1}


def test_a_concurrent_answer_lost_is_caught(tmp_path: Path) -> None:
    """A backend that drops one of two concurrent turns' answers fails I-ORDER / I-PAIR."""
    backend = AiSdkBackend()
    result = run(scenario(tmp_path, DOUBLE_SUBMIT.replace("rounds: 2", "rounds: 1")),
                 _dropping_first_answer(backend))
    flagged(result, "I-PAIR", "not stored after it")


def _dropping_first_answer(backend: AiSdkBackend) -> AiSdkBackend:
    store = backend._store

    def dropping(chat: str, mid: str, role: str, parts: list[dict[str, str]]) -> bool:
        if role == "assistant" and not any(r["role"] == "assistant" for r in backend.rows):
            return True  # the first answer is never stored
        return store(chat, mid, role, parts)

    backend._store = dropping  # type: ignore[method-assign]
    return backend
