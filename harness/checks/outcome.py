"""The provider script as an oracle: a chat or stream answer held to what the contract
makes of what the provider did (C-CHAT-3/4/5, C-STREAM-1..3), as the ``outcome``
check, and a stream's framing (``stream``), whatever the step's ``expect:`` says.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from harness.checks.expect import check_expect
from harness.contract import oracle
from harness.provider import ErrorAnswer, RawAnswer, Reply
from harness.result import Check
from harness.scenario.match import short, status_matches

if TYPE_CHECKING:
    from harness.result import Exchange
    from harness.scenario.model import Step
    from harness.scenario.view import RunView

FINAL, STREAM_ERROR = "__FINAL_METADATA__", "__STREAM_ERROR__"


def parse_stream(ex: Exchange) -> tuple[str, dict[str, Any] | None, str | None]:
    """(text, final line object, problem) of a 200 stream (C-STREAM-1)."""
    if isinstance(ex.response_body, dict) and {FINAL, STREAM_ERROR} & set(ex.response_body):
        return "", ex.response_body, None
    body = ex.response_body if isinstance(ex.response_body, str) else ""
    text, sep, last = body.rpartition("\n")
    if not sep:
        return body, None, "the stream has no final line (no newline before it)"
    try:
        final = json.loads(last)
    except ValueError:
        return text, None, f"the final line is not JSON: {short(last, 80)}"
    if not isinstance(final, dict) or not ({FINAL, STREAM_ERROR} & set(final)):
        return text, None, f"the final line carries neither {FINAL} nor {STREAM_ERROR}"
    if FINAL in text or STREAM_ERROR in text:
        return text, final, "a marker appears inside the streamed text"
    return text, final, None


def check_outcome(run: RunView, index: int, step: Step, ex: Exchange, *, streaming: bool
                  ) -> tuple[dict[str, Any] | None, str]:
    """Judge a chat/stream answer; return (data on success, error text on failure).

    The provider script is an oracle: whatever the scenario's ``expect:`` says,
    the answer is held to what the contract makes of what the provider did
    (C-CHAT-3/4/5, C-STREAM-1..3), as the ``outcome`` check.
    """
    answers = run.answers(step)
    outcome = oracle.expected_outcome(answers, timeout_ms=run.provider_timeout_ms,
                                      stream=streaming)
    if not run.scenario.check_enabled(Check.OUTCOME):
        outcome = None
    expect = step.expect
    if outcome is not None:
        _judge_status(run, index, ex, outcome, answers)
        if expect is not None and expect.status is not None and status_matches(
                expect.status, outcome.status):
            expect = expect.model_copy(update={"status": None})  # judged once, above
    if expect is not None or outcome is None:
        check_expect(run, index, ex, expect, default=None if outcome else "2xx")
    if outcome is not None:
        ex.expected = outcome.status if ex.expected is None else ex.expected
    if ex.status != 200:
        error = ex.json().get("error")
        return None, error if isinstance(error, str) and error else "Message failed"
    if not streaming:
        data = ex.json().get("data")
        if not isinstance(data, dict):
            run.result.fail(Check.EXPECT, "a 200 answer without a 'data' object", step=index,
                            expected="{data: {...}}", actual=ex.response_body, clause="C-CHAT-4")
            return None, "Message failed"
        _check_reply(run, index, data, answers, outcome, ex)
        return data, ""
    text, final, problem = parse_stream(ex)
    if problem:
        run.result.fail(Check.STREAM, problem, step=index, expected="text, then one final line",
                        actual=short(ex.response_body, 300), clause="C-STREAM-1")
    if final is None:
        return None, "Message failed"
    if STREAM_ERROR in final:
        err = final[STREAM_ERROR] if isinstance(final[STREAM_ERROR], dict) else {}
        if outcome is not None and outcome.stream_error != err.get("code"):
            wanted = (f"{STREAM_ERROR} {outcome.stream_error!r}" if outcome.stream_error
                      else "a complete stream ending with __FINAL_METADATA__")
            run.result.fail(
                Check.OUTCOME, f"{outcome.why}: {_clause_says(outcome)} {wanted}; the backend "
                f"ended the stream with {STREAM_ERROR} code {err.get('code')!r}",
                step=index, expected=outcome.stream_error or FINAL, actual=final,
                clause=outcome.clause)
        message = err.get("error")
        return None, message if isinstance(message, str) and message else "Message failed"
    data = final[FINAL] if isinstance(final[FINAL], dict) else {}
    if outcome is not None and outcome.stream_error:
        run.result.fail(
            Check.OUTCOME, f"{outcome.why}: {_clause_says(outcome)} a stream ending with "
            f"{STREAM_ERROR} {outcome.stream_error!r}; the backend ended it with {FINAL} "
            "(a success)", step=index, expected=outcome.stream_error, actual=final,
            clause=outcome.clause)
    if data.get("response") != text:
        run.result.fail(Check.STREAM, "the streamed text differs from __FINAL_METADATA__.response",
                        step=index, expected=short(data.get("response"), 300),
                        actual=short(text, 300), clause="C-STREAM-1")
    _check_reply(run, index, data, answers, outcome, ex)
    return data, ""


def _clause_says(outcome: oracle.Outcome) -> str:
    return f"{outcome.clause} makes that"


def _judge_status(run: RunView, index: int, ex: Exchange, outcome: oracle.Outcome,
                  answers: list[Any]) -> None:
    """The answer's status and error code against the oracle's (the ``outcome`` check)."""
    says = f"{outcome.why}: {_clause_says(outcome)} {outcome.describe()}"
    if ex.error:
        run.result.fail(Check.OUTCOME, f"{ex.method} {ex.path} got no answer: {ex.error} "
                        f"({says})", step=index, expected=outcome.status, actual=None,
                        clause=outcome.clause)
        return
    if ex.status != outcome.status:
        turned = (" (a success)" if 200 <= ex.status < 300 and outcome.status != 200
                  else "")
        run.result.fail(Check.OUTCOME, f"{says}; the backend answered {ex.brief()}{turned}",
                        step=index, expected=outcome.status,
                        actual={"status": ex.status, "body": ex.response_body},
                        clause=outcome.clause)
        return
    if outcome.code is None:
        return
    got_code = ex.json().get("code")
    if got_code != outcome.code:
        run.result.fail(Check.OUTCOME, f"{says}; the backend answered {ex.status} with code "
                        f"{got_code!r}", step=index, expected=outcome.code,
                        actual=ex.response_body, clause="C-ERR-2")
    last = answers[-1] if answers else None
    if isinstance(last, ErrorAnswer) and last.status in (429, 503):
        want = oracle.retry_after_seconds(last.retry_after)
        got = ex.json().get("retryAfter")
        header = ex.headers.get("retry-after")
        slack = 2 if isinstance(last.retry_after, str) and not last.retry_after.isdigit() else 0
        if not isinstance(got, int) or isinstance(got, bool) or abs(got - want) > slack:
            run.result.fail(Check.OUTCOME, f"{outcome.why}: C-CHAT-5 makes that retryAfter {want}; "
                            f"the backend sent {got!r}", step=index, expected=want, actual=got,
                            clause="C-CHAT-5")
        if header is None or not header.strip().isdigit() or abs(int(header) - want) > slack:
            run.result.fail(Check.OUTCOME, f"{outcome.why}: C-CHAT-5 makes that a Retry-After: "
                            f"{want} header; the backend sent {header!r}", step=index,
                            expected=want, actual=header, clause="C-CHAT-5")


def _check_reply(run: RunView, index: int, data: dict[str, Any], answers: list[Any],
                 outcome: oracle.Outcome | None, ex: Exchange) -> None:
    """C-CHAT-4: the answer is the provider's text and model, with its usage."""
    if outcome is None or outcome.failed:
        return
    last = answers[-1]
    if isinstance(last, Reply):
        text: str | None = last.content
    elif isinstance(last, RawAnswer):
        text = oracle.raw_completion_text(last.body)
    else:
        return
    what = f"{outcome.why}: "
    if data.get("response") != text:
        run.result.fail(Check.OUTCOME, f"{what}data.response is not the provider's text",
                        step=index, expected=short(text, 200),
                        actual=short(data.get("response"), 200), clause="C-CHAT-4")
    usage = data.get("usage")
    counts = ("prompt_tokens", "completion_tokens", "total_tokens")
    if not isinstance(usage, dict) or not all(
        isinstance(usage.get(k), int) and not isinstance(usage.get(k), bool) for k in counts
    ):
        run.result.fail(Check.OUTCOME, f"{what}data.usage needs three integer counts "
                        "(zeros where the provider sent none)", step=index,
                        expected=", ".join(counts), actual=usage, clause="C-CHAT-4")
    elif isinstance(last, Reply) and (last.omit_usage or last.usage is not None):
        want = {k: 0 if last.omit_usage else int((last.usage or {}).get(k, 0)) for k in counts}
        got = {k: usage.get(k) for k in counts}
        if got != want:
            run.result.fail(Check.OUTCOME, f"{what}data.usage {got} is not the provider's counts "
                            f"{want} (zeros for what it left out)", step=index, expected=want,
                            actual=usage, clause="C-CHAT-4")
    request = ex.request_body if isinstance(ex.request_body, dict) else {}
    if isinstance(last, Reply):
        model = last.model or request.get("model")
        if model is not None and data.get("model") != model:
            run.result.fail(Check.OUTCOME, f"{what}data.model is {data.get('model')!r}, expected "
                            f"{model!r} (the provider's model, else the request's)",
                            step=index, expected=model, actual=data.get("model"),
                            clause="C-CHAT-4")
        if last.id is not None and data.get("id") != last.id:
            run.result.fail(Check.OUTCOME, f"{what}data.id is {data.get('id')!r}, expected the "
                            f"provider's generation id {last.id!r}", step=index,
                            expected=last.id, actual=data.get("id"), clause="C-CHAT-4")
