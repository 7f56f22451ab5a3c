"""The scenario language's matchers and generators, and the answer-wide checks."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import run_scenarios
from harness.checks import answers
from harness.checks.conversation import Snapshot, check_rows
from harness.config import RunConfig
from harness.db import Database
from harness.errors import ScenarioError
from harness.reporting.terminal import render_failure
from harness.runner.match import Matcher, mismatches
from harness.runner.result import Exchange, ScenarioResult
from harness.scenario import yamlsource
from harness.scenario.load import load_file

# -- matchers and !repeat -------------------------------------------------------


def test_matchers_accept_and_refuse() -> None:
    want = yamlsource.loads(
        "a: !any\nb: !absent\nc: !type integer\nd: !re '^msg_\\d+'\ne: !type number\n")
    good = {"a": None, "c": 3, "d": "msg_12x", "e": 1.5}
    assert mismatches(want, good) == []
    bad = {"b": 1, "c": True, "d": "id_12", "e": "1"}
    assert mismatches(want, bad) == [
        "body.a: missing (expected !any)",
        "body.b: expected no such key, got 1",
        "body.c: expected integer, got True",
        "body.d: expected a string matching /^msg_\\d+/, got 'id_12'",
        "body.e: expected number, got '1'",
    ]


@pytest.mark.parametrize("same", [
    "2025-08-12T14:34:11.000Z", "2025-08-12T14:34:11Z", "2025-08-12T16:34:11+02:00",
    "2025-08-12T14:34:11.000+00:00", "2025-08-12 14:34:11.000Z", "2025-08-12T14:34:11.000123",
])
def test_instant_accepts_any_iso_form_of_the_same_instant(same: str) -> None:
    want = yamlsource.loads('t: !instant "2025-08-12T14:34:11.000Z"\n')
    assert mismatches(want, {"t": same}) == []


@pytest.mark.parametrize("other", [
    "2025-08-12T14:34:11.001Z", "2025-08-12T14:34:11+01:00", "2025-08-12", "yesterday",
    1755009251000, None,
])
def test_instant_refuses_another_instant_or_no_instant(other: Any) -> None:
    want = yamlsource.loads('t: !instant "2025-08-12T14:34:11.000Z"\n')
    (problem,) = mismatches(want, {"t": other})
    assert problem.startswith("body.t: expected the instant 2025-08-12T14:34:11.000Z")


def test_boolean_is_not_integer_but_integer_is_number() -> None:
    assert Matcher("type", "boolean").problem(True) is None
    assert Matcher("type", "integer").problem(False) is not None
    assert Matcher("type", "number").problem(2) is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: !type intx\n", "!type takes one of string"),
        ("a: !re '('\n", "is not a regular expression"),
        ("a: !any yes\n", "!any takes no value"),
        ("a: !instant noon\n", "!instant takes an ISO-8601 timestamp"),
        ("a: !repeat {text: x}\n", "!repeat takes {text: STRING"),
        ("a: !repeat {text: x, times: 2, extra: 1}\n", "unknown key(s) ['extra']"),
        ("a: !repeat [x, 2]\n", "!repeat takes a mapping"),
    ],
)
def test_bad_tags_name_file_and_line(text: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        yamlsource.loads("x: 1\n" + text, display="scenarios/t.yaml")
    message = str(info.value)
    assert message.startswith("scenarios/t.yaml:2: ") and words in message
    assert "YAML syntax error" not in message


def test_repeat_builds_long_strings_with_edges() -> None:
    doc = yamlsource.loads('m: !repeat {text: "😀", times: 3, prefix: " ", suffix: "!"}\n')
    assert doc["m"] == " 😀😀😀!"


def _scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "scenarios" / "t.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_raw_body_excludes_body(tmp_path: Path) -> None:
    path = _scenario(tmp_path, """\
        name: t
        steps:
          - http: POST /api/chat
            body: {a: 1}
            raw_body: "{"
        """)
    with pytest.raises(ScenarioError) as info:
        load_file(path, display="scenarios/t.yaml")
    assert "give one of 'body', 'body_file' and 'raw_body'" in str(info.value)
    assert str(info.value).startswith("scenarios/t.yaml:3")


# -- the language end to end, on the reference ------------------------------------


def _run(tmp_path: Path, database: Database, config: RunConfig, body: str) -> ScenarioResult:
    [result] = run_scenarios([_scenario(tmp_path, body)], config, db=database)
    return result


def test_users_and_http_date_variables(tmp_path: Path, database: Database,
                                       config: RunConfig) -> None:
    result = _run(tmp_path, database, config, """\
        name: t
        model: m/x
        steps:
          - chat: hello
            provider: {status: 429, retry_after: "${http_date.120}"}
          - db: SELECT user_id::text AS u FROM chat_sessions
            expect: {rows: [{u: "${users.alice}"}]}
          - db: SELECT %s::text AS other
            params: ["${users.bob}"]
            expect: {rows: [{other: !re "^[0-9a-f-]{36}$"}]}
        """)
    assert result.passed, render_failure(result)
    chat = result.steps[0].exchanges[0]
    assert 119 <= chat.json()["retryAfter"] <= 121
    assert result.steps[2].exchanges == []  # db steps make no HTTP request


def test_a_wrong_header_matcher_fails_the_step(tmp_path: Path, database: Database,
                                               config: RunConfig) -> None:
    result = _run(tmp_path, database, config, """\
        name: t
        steps:
          - http: GET /api/health
            auth: false
            expect:
              headers:
                x-request-id: !absent
                content-type: !re "text/html"
        """)
    messages = [f.message for f in result.failures]
    assert any("header x-request-id: expected no such key" in m for m in messages), messages
    assert any("header content-type: expected a string matching /text/html/" in m
               for m in messages), messages


def test_disconnects_are_retried_like_connection_errors(tmp_path: Path, database: Database,
                                          config: RunConfig) -> None:
    result = _run(tmp_path, database, config, """\
        name: t
        model: m/x
        steps:
          - chat: hello
            provider: [{disconnect: true}, {disconnect: true, raw: '{"id": "gen'}, {reply: ok}]
            expect: {status: 200, provider: {calls: 3}}
        """)
    assert result.passed, render_failure(result)


# -- envelope and server_error, on recorded answers ------------------------------


def _ex(status: int, body: Any, headers: dict[str, str] | None = None, *,
        expected: Any = None, step: int | None = 0) -> Exchange:
    return Exchange(step=step, purpose="raw", actor="alice", method="GET", path="/api/x",
                    request_body=None, status=status, response_body=body,
                    headers={"x-request-id": "r1"} if headers is None else headers,
                    elapsed_ms=1.0, expected=expected)


def _fake_run(*exchanges: Exchange) -> Any:
    result = ScenarioResult(scenario_id="t", file="t.yaml", target="fake")
    result.exchanges.extend(exchanges)
    return SimpleNamespace(result=result)


GOOD_ERROR = {"error": "no", "code": "not_found", "timestamp": "2025-08-12T14:34:08.861Z"}


def test_envelope_accepts_a_good_error_and_success() -> None:
    run = _fake_run(_ex(404, GOOD_ERROR), _ex(200, {"ok": 1}))
    asyncio.run(answers.check_envelopes(run, Snapshot()))
    assert run.result.failures == []


@pytest.mark.parametrize(
    ("status", "body", "words", "clause"),
    [
        (404, "Not Found", "not a JSON object", "C-ERR-1"),
        (404, {"detail": "Not Found"}, "'error' is not a string", "C-ERR-1"),
        (404, {**GOOD_ERROR, "timestamp": "yesterday"}, "'timestamp' is not an ISO", "C-ERR-1"),
        (429, {**GOOD_ERROR, "code": "too_many_requests", "retryAfter": "60"},
         "'retryAfter' is not an integer", "C-ERR-1"),
        (400, {**GOOD_ERROR, "code": "bad_request", "suggestions": "x"},
         "'suggestions' is not a list", "C-ERR-1"),
        (422, {**GOOD_ERROR, "code": "bad_request"}, "goes with status 400, not 422", "C-ERR-2"),
        (400, {**GOOD_ERROR, "code": "validation_error"}, "not one of the contract's codes",
         "C-ERR-2"),
    ],
)
def test_envelope_names_what_is_wrong(status: int, body: Any, words: str,
                                            clause: str) -> None:
    run = _fake_run(_ex(status, body))
    asyncio.run(answers.check_envelopes(run, Snapshot()))
    [failure] = run.result.failures
    assert words in failure.message and failure.clause == clause and failure.step == 0


def test_every_answer_needs_a_request_id() -> None:
    run = _fake_run(_ex(200, {}, headers={}))
    asyncio.run(answers.check_envelopes(run, Snapshot()))
    [failure] = run.result.failures
    assert "no x-request-id header" in failure.message


def test_server_errors_need_an_expectation() -> None:
    run = _fake_run(_ex(502, {**GOOD_ERROR, "code": "bad_gateway"}, expected=502),
                    _ex(503, {**GOOD_ERROR, "code": "service_unavailable"}, expected="2xx"),
                    _ex(500, {**GOOD_ERROR, "code": "internal_server_error"}, step=None))
    asyncio.run(answers.check_server_errors(run, Snapshot()))
    assert [f.actual["status"] for f in run.result.failures] == [503, 500]
    assert all(f.check == "server_error" for f in run.result.failures)


def test_a_500_must_not_show_sql_or_tracebacks() -> None:
    body = {**GOOD_ERROR, "code": "internal_server_error",
            "details": 'Traceback (most recent call last):\n  File "app.py"'}
    run = _fake_run(_ex(500, body, expected=500))
    asyncio.run(answers.check_server_errors(run, Snapshot()))
    [failure] = run.result.failures
    assert "shows internals" in failure.message and failure.clause == "C-ERR-3"


def test_a_server_error_already_reported_is_not_repeated() -> None:
    run = _fake_run(_ex(500, GOOD_ERROR))
    run.result.fail("sync", "already said", step=0, actual={"status": 500, "body": {}})
    asyncio.run(answers.check_server_errors(run, Snapshot()))
    assert len(run.result.failures) == 1


# -- rows: the API shows exactly the session's rows ------------------------------


def _rows_run(database: Database) -> Any:
    from harness.runner.client import Sync

    run = _fake_run()
    run.ctx = SimpleNamespace(db=database)
    # the client stored into s1 (what the check reads back is the test's Snapshot)
    run.client = SimpleNamespace(chats=[], syncs=[
        Sync(step=0, actor="alice", body={"sessionId": "s1", "messages": []}, status=201)])
    return run


def _store(database: Database) -> None:
    database.reset()
    with database.connection() as conn:
        conn.execute("INSERT INTO chat_sessions (id, user_id) VALUES "
                     "('s1', '6f1c3a52-5e0b-4c7e-9d4a-2b8f0c1d9e77')")
        for mid, content, ts in (("m1", "one", "2025-01-01T00:00:01Z"),
                                 ("m2", "two", "2025-01-01T00:00:02Z")):
            conn.execute("INSERT INTO chat_messages (id, session_id, role, content, "
                         "message_timestamp) VALUES (%s, 's1', 'user', %s, %s)",
                         (mid, content, ts))


def test_rows_agree_with_the_api(database: Database) -> None:
    _store(database)
    run = _rows_run(database)
    state = Snapshot(reads={"s1": [{"id": "m1", "role": "user", "content": "one"},
                                   {"id": "m2", "role": "user", "content": "two"}]})
    asyncio.run(check_rows(run, state))
    assert run.result.failures == []


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ([{"id": "m1", "role": "user", "content": "one"}], "rows the API does not show: ['m2']"),
        ([{"id": "m2", "role": "user", "content": "two"},
          {"id": "m1", "role": "user", "content": "one"}], "the same messages in another order"),
        ([{"id": "m1", "role": "user", "content": "one"},
          {"id": "m2", "role": "user", "content": "TWO"}], "content: row 'two', API 'TWO'"),
        ([{"id": "m1", "role": "user", "content": "one", "error": True},
          {"id": "m2", "role": "user", "content": "two"}], "error: row error_message None"),
    ],
)
def test_rows_name_the_difference(database: Database, items: list[dict[str, Any]],
                                        words: str) -> None:
    _store(database)
    run = _rows_run(database)
    asyncio.run(check_rows(run, Snapshot(reads={"s1": items})))
    [failure] = run.result.failures
    assert words in failure.message and failure.check == "rows"
