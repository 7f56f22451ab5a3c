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
from harness.result import Exchange, ScenarioResult
from harness.scenario import match, yamlsource
from harness.scenario.load import load_file
from harness.scenario.match import Matcher, mismatches

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


INSTANT = "2025-08-12T14:34:11.000Z"
NO_INSTANT = f"expected the instant {INSTANT} (in any ISO-8601 form), got "


@pytest.mark.parametrize(("matcher", "actual", "problem"), [
    pytest.param(Matcher("any"), None, None, id="any-takes-null"),
    pytest.param(Matcher("any"), {"a": 1}, None, id="any-takes-anything"),
    pytest.param(Matcher("absent"), 1, "expected no such key, got 1", id="absent-refuses-1"),
    pytest.param(Matcher("absent"), None, "expected no such key, got None",
                 id="absent-refuses-even-null"),
    pytest.param(Matcher("type", "string"), "x", None, id="string-takes-text"),
    pytest.param(Matcher("type", "string"), 1, "expected string, got 1", id="string-refuses-1"),
    pytest.param(Matcher("type", "integer"), 3, None, id="integer-takes-3"),
    pytest.param(Matcher("type", "integer"), True, "expected integer, got True",
                 id="integer-refuses-a-boolean"),
    pytest.param(Matcher("type", "integer"), 1.5, "expected integer, got 1.5",
                 id="integer-refuses-a-float"),
    pytest.param(Matcher("type", "number"), 2, None, id="number-takes-an-integer"),
    pytest.param(Matcher("type", "number"), 2.5, None, id="number-takes-a-float"),
    pytest.param(Matcher("type", "number"), False, "expected number, got False",
                 id="number-refuses-a-boolean"),
    pytest.param(Matcher("type", "number"), "1", "expected number, got '1'",
                 id="number-refuses-digits"),
    pytest.param(Matcher("type", "boolean"), False, None, id="boolean-takes-false"),
    pytest.param(Matcher("type", "boolean"), 0, "expected boolean, got 0",
                 id="boolean-refuses-0"),
    pytest.param(Matcher("type", "list"), [], None, id="list-takes-a-list"),
    pytest.param(Matcher("type", "list"), {}, "expected list, got {}", id="list-refuses-object"),
    pytest.param(Matcher("type", "object"), {}, None, id="object-takes-an-object"),
    pytest.param(Matcher("type", "object"), [], "expected object, got []",
                 id="object-refuses-a-list"),
    pytest.param(Matcher("type", "null"), None, None, id="null-takes-null"),
    pytest.param(Matcher("type", "null"), 0, "expected null, got 0", id="null-refuses-0"),
    pytest.param(Matcher("re", r"^msg_\d+"), "msg_12x", None, id="re-takes-a-match"),
    pytest.param(Matcher("re", "b"), "bcd", None, id="re-matches-at-the-start"),
    pytest.param(Matcher("re", "b"), "abc", "expected a string matching /b/, got 'abc'",
                 id="re-does-not-search"),
    pytest.param(Matcher("re", r"^msg_\d+"), "id_12",
                 "expected a string matching /^msg_\\d+/, got 'id_12'", id="re-refuses"),
    pytest.param(Matcher("re", r"\d"), 12, "expected a string matching /\\d/, got 12",
                 id="re-refuses-a-number"),
    pytest.param(Matcher("instant", INSTANT), "2025-08-12T16:34:11+02:00", None,
                 id="instant-takes-another-form"),
    pytest.param(Matcher("instant", INSTANT), "2025-08-12T14:34:11.001Z",
                 NO_INSTANT + "'2025-08-12T14:34:11.001Z'", id="instant-refuses-another"),
    pytest.param(Matcher("instant", INSTANT), "yesterday", NO_INSTANT + "'yesterday'",
                 id="instant-refuses-words"),
    pytest.param(Matcher("instant", INSTANT), 1755009251000, NO_INSTANT + "1755009251000",
                 id="instant-refuses-a-number"),
    pytest.param(Matcher("instant", "2025-08-12T00:00:00Z"), "2025-08-12",
                 "expected the instant 2025-08-12T00:00:00Z (in any ISO-8601 form), "
                 "got '2025-08-12'", id="instant-refuses-a-date-alone"),
    pytest.param(Matcher("other"), 1, None, id="unknown-kinds-take-anything"),
])
def test_matcher_problem(matcher: Matcher, actual: Any, problem: str | None) -> None:
    assert matcher.problem(actual) == problem


@pytest.mark.parametrize(("matcher", "text"), [
    (Matcher("any"), "!any"), (Matcher("absent"), "!absent"),
    (Matcher("type", "integer"), "!type integer"), (Matcher("re", "^a b"), "!re ^a b"),
])
def test_matcher_repr_is_its_yaml_tag(matcher: Matcher, text: str) -> None:
    assert repr(matcher) == text


@pytest.mark.parametrize(("text", "timed"), [
    ("2025-08-12T14:34", True), ("2025-08-12 14:34:11Z", True), ("20250812T1434", True),
    ("2025-08-12", False), ("2025-08-12T1", False), ("noon", False),
])
def test_has_time_needs_a_time_of_day(text: str, timed: bool) -> None:
    assert match._has_time(text) is timed


@pytest.mark.parametrize(("value", "limit", "text"), [
    pytest.param("x" * 10, 80, "'" + "x" * 10 + "'", id="short-as-repr"),
    pytest.param("x" * 78, 80, "'" + "x" * 78 + "'", id="exactly-the-limit-is-kept"),
    pytest.param("x" * 79, 80, "'" + "x" * 76 + "...", id="over-the-limit-is-cut-to-it"),
    pytest.param([1, 2, 3], 5, "[1...", id="any-limit"),
])
def test_short(value: Any, limit: int, text: str) -> None:
    assert match.short(value, limit) == text


def test_short_cuts_at_80_by_default() -> None:
    assert match.short("y" * 78) == "'" + "y" * 78 + "'"
    assert match.short("y" * 79) == "'" + "y" * 76 + "..."


@pytest.mark.parametrize(("expected", "actual", "problems"), [
    pytest.param(1, 1, [], id="equal-scalars"),
    pytest.param("a", "b", ["body: expected 'a', got 'b'"], id="other-scalar"),
    pytest.param(1, True, ["body: expected 1, got True"], id="true-is-not-1"),
    pytest.param(True, 1, ["body: expected True, got 1"], id="1-is-not-true"),
    pytest.param(0, False, ["body: expected 0, got False"], id="false-is-not-0"),
    pytest.param(1, 1.0, [], id="1-is-1.0-as-in-json"),
    pytest.param(Matcher("any"), None, [], id="a-matcher-at-the-top"),
    pytest.param(Matcher("type", "integer"), "x", ["body: expected integer, got 'x'"],
                 id="a-matcher-refusing-at-the-top"),
    pytest.param({"a": 1}, [1], ["body: expected an object, got [1]"], id="object-vs-list"),
    pytest.param({"a": 1}, {"a": 1, "b": 2}, [], id="extra-keys-are-free"),
    pytest.param({"a": 1}, {}, ["body.a: missing (expected 1)"], id="missing-key"),
    pytest.param({"a": Matcher("any")}, {}, ["body.a: missing (expected !any)"],
                 id="any-needs-the-key"),
    pytest.param({"a": Matcher("absent")}, {}, [], id="absent-is-missing"),
    pytest.param({"a": Matcher("absent")}, {"a": None},
                 ["body.a: expected no such key, got None"], id="absent-refuses-null"),
    pytest.param({"a": 1, "b": 2, "c": 3}, {"a": 0, "b": 2, "c": 0},
                 ["body.a: expected 1, got 0", "body.c: expected 3, got 0"],
                 id="every-key-reported"),
    pytest.param({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 3}]}},
                 ["body.a.b[1].c: expected 2, got 3"], id="nested-path"),
    pytest.param([1], {"a": 1}, ["body: expected a list, got {'a': 1}"], id="list-vs-object"),
    pytest.param([1, 2], [1], ["body: expected 2 items, got 1"], id="list-length"),
    pytest.param([1], [1, 2], ["body: expected 1 items, got 2"], id="lists-whole"),
    pytest.param([1, 2, 3], [0, 2, 4], ["body[0]: expected 1, got 0",
                                        "body[2]: expected 3, got 4"], id="items-by-index"),
    pytest.param([Matcher("type", "integer"), {"x": 1}], ["x", {}],
                 ["body[0]: expected integer, got 'x'", "body[1].x: missing (expected 1)"],
                 id="matchers-and-objects-in-lists"),
    pytest.param([], [], [], id="empty-lists"),
    pytest.param("z" * 100, "z", ["body: expected '" + "z" * 76 + "..., got 'z'"],
                 id="long-values-shortened"),
])
def test_mismatches(expected: Any, actual: Any, problems: list[str]) -> None:
    assert mismatches(expected, actual) == problems


def test_mismatches_under_a_given_path() -> None:
    assert mismatches({"a": 1}, {"a": 2}, "header x") == ["header x.a: expected 1, got 2"]


@pytest.mark.parametrize(("expected", "status", "ok"), [
    pytest.param(200, 200, True, id="int-equal"),
    pytest.param(200, 201, False, id="int-other"),
    pytest.param([200, 201], 201, True, id="list-holds-it"),
    pytest.param([200, 201], 404, False, id="list-lacks-it"),
    pytest.param("2xx", 200, True, id="2xx-200"),
    pytest.param("2xx", 299, True, id="2xx-299"),
    pytest.param("2xx", 404, False, id="2xx-not-404"),
    pytest.param("4xx", 404, True, id="4xx-404"),
    pytest.param("4xx", 200, False, id="4xx-not-200"),
    pytest.param("5xx", 503, True, id="5xx-503"),
    pytest.param("1xx", 100, True, id="1xx-from-100"),
    pytest.param("4xx", 42, False, id="no-class-below-100"),
])
def test_status_matches(expected: Any, status: int, ok: bool) -> None:
    assert match.status_matches(expected, status) is ok


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
          - http: GET /api/chat/sessions
            as: bob  # users.NAME names an actor of the scenario
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
    from harness.scenario.frontend import Sync

    run = _fake_run()
    run.db = database  # a RunView reads it as run.db
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
