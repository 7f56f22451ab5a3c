"""The ``server_error`` check (C-ERR-3): no 5xx nothing calls for, no internals in a 500.

``answers.check_server_errors`` reads every answer of the run: a server
error's body never shows SQL, a traceback or the driver (``psycopg``); a 5xx
that neither a step's expectation nor the provider script calls for fails,
unless another check already reported that answer. A 5xx the script calls for
(a 502 for a failing provider) passes, with any text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from checkkit import (
    NOW,
    Backend,
    Call,
    clean,
    contract_chat,
    exchange,
    failures,
    flagged,
    judge,
    run,
    scenario,
)

from harness.checks.answers import check_server_errors
from harness.result import Failure

HEAD = "name: case\nmodel: m/x\n"
ONE_CHAT = HEAD + """\
steps:
  - chat: hello
    provider: {reply: Hi.}
"""
PROVIDER_DOWN = HEAD + """\
steps:
  - chat: hello
    provider: [{status: 500}, {status: 500}, {status: 502}]
"""
PROVIDER_BUSY = HEAD + """\
steps:
  - chat: hello
    provider: {status: 503, retry_after: 4}
"""


def storing_fails(body: Any) -> Backend:
    """A backend whose store answers 500 with ``body`` (JSON, or text)."""
    def store(b: dict[str, Any], backend: Backend) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(500, text=body)
        return httpx.Response(500, json=body)
    return Backend(store=store)


def envelope(**fields: Any) -> dict[str, Any]:
    return {"error": "Internal error", "code": "internal_server_error", "timestamp": NOW,
            **fields}


LEAKS = {
    "a traceback": ("Traceback (most recent call last):\n  ...",
                    "'Traceback (most recent call last)'"),
    "a stack frame": (envelope(details='File "/app/store.py", line 42, in upsert'),
                      "'File \"/app/store.py\", line 42'"),
    "an INSERT": (envelope(error="INSERT INTO chat_messages (id) VALUES ($1) failed"),
                  "'INSERT INTO'"),
    "a SELECT": (envelope(details="SELECT id FROM chat_sessions WHERE id = $1"),
                 "'SELECT id FROM'"),
    "the driver": (envelope(error="psycopg.errors.UniqueViolation: duplicate key"),
                   "'psycopg'"),
}


@pytest.mark.parametrize(("body", "shown"), LEAKS.values(), ids=LEAKS.keys())
def test_a_500_that_shows_internals_fails(tmp_path: Path, body: Any, shown: str) -> None:
    result = run(scenario(tmp_path, ONE_CHAT), storing_fails(body))
    failure = flagged(result, "server_error", "C-ERR-3",
                      f"POST /api/chat/messages (sync) -> 500 shows internals ({shown}) "
                      "in its body", step=0)
    assert failure.expected == "no SQL, no traceback"
    flagged(result, "sync", "C-MSG-8", "got 500", step=0)


def test_a_500_that_shows_nothing_is_reported_once_by_the_check_that_saw_it(
        tmp_path: Path) -> None:
    result = run(scenario(tmp_path, ONE_CHAT), storing_fails(envelope()))
    assert failures(result, "server_error") == []
    flagged(result, "sync", "C-MSG-8", "got 500 internal_server_error", step=0)


# No step of a scenario can answer a 5xx that no other check reports first (every
# step judges its own answers; the checks report their reads and replays), so the
# rule is proven on hand-made answers: the check alone, as the runner would call it.


def _judge(tmp_path: Path, *answers: Any, earlier: list[Failure] | None = None) -> Any:
    return judge(check_server_errors, scenario(tmp_path, ONE_CHAT), list(answers), earlier)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_nothing_calls_for_fails(tmp_path: Path, status: int) -> None:
    result = _judge(tmp_path, exchange(status, envelope(code="bad_gateway")))
    failure = flagged(result, "server_error", "C-ERR-3",
                      f"POST /api/chat/messages (sync) -> {status}: a server error that "
                      "nothing in the scenario calls for", step=0)
    assert failure.actual["status"] == status


def test_a_5xx_of_a_check_s_own_request_fails_too(tmp_path: Path) -> None:
    answer = exchange(500, envelope(), step=None, method="GET", purpose="read")
    flagged(_judge(tmp_path, answer), "server_error", "C-ERR-3",
            "GET /api/chat/messages (read) -> 500: a server error", step=None)


@pytest.mark.parametrize("expected", [502, "5xx", [502, 503]])
def test_a_5xx_the_step_calls_for_passes(tmp_path: Path, expected: Any) -> None:
    answer = exchange(502, envelope(code="bad_gateway"), expected=expected)
    assert _judge(tmp_path, answer).failures == []


def test_a_5xx_another_check_reported_at_its_step_is_not_reported_again(
        tmp_path: Path) -> None:
    earlier = Failure("sync", "storing got 500", step=0, actual={"status": 500, "body": {}},
                      clause="C-MSG-8")
    assert _judge(tmp_path, exchange(500, envelope()), earlier=[earlier]).failures == [earlier]
    # ... but one reported at another step, or with another status, is
    later = _judge(tmp_path, exchange(500, envelope(), step=1), earlier=[earlier])
    flagged(later, "server_error", "C-ERR-3", "a server error that nothing", step=1)


RIGHT = {"the provider failed: 502": PROVIDER_DOWN, "the provider is busy: 503": PROVIDER_BUSY}


@pytest.mark.parametrize("text", RIGHT.values(), ids=RIGHT.keys())
def test_a_5xx_the_provider_calls_for_passes_every_check(tmp_path: Path, text: str) -> None:
    def worded(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        answer = contract_chat(body, streaming, call)
        doc = {**answer.json(), "error": "The model provider failed; try again later",
               "details": "upstream answered 500 three times", "attempts": 3}
        return httpx.Response(answer.status_code, headers=answer.headers, json=doc)

    clean(run(scenario(tmp_path, text), Backend(chat=worded)))


def test_an_error_text_in_plain_english_is_not_sql(tmp_path: Path) -> None:
    def overloaded(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        answer = contract_chat(body, streaming, call)
        doc = {**answer.json(), "error": "The model is overloaded: select another model "
               "from the list"}
        return httpx.Response(answer.status_code, headers=answer.headers, json=doc)

    result = run(scenario(tmp_path, PROVIDER_BUSY), Backend(chat=overloaded))
    assert failures(result, "server_error") == []


def test_only_a_500_is_held_to_showing_no_internals(tmp_path: Path) -> None:
    """C-ERR-3 speaks of a 500: a 503's text (a proxy's page, say) is free."""
    def busy_with_a_trace(body: dict[str, Any], streaming: bool, call: Call) -> httpx.Response:
        answer = contract_chat(body, streaming, call)
        doc = {**answer.json(), "details": 'Traceback (most recent call last): File "x", line 1'}
        return httpx.Response(answer.status_code, headers=answer.headers, json=doc)

    result = run(scenario(tmp_path, PROVIDER_BUSY), Backend(chat=busy_with_a_trace))
    assert failures(result, "server_error") == []
