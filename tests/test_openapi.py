"""The OpenAPI description of the contract: valid, in step with the contract and the reference.

Three kinds of checks: the document itself (OpenAPI 3.1, clause ids, routes,
links, the code↔status pairing); real answers of the reference backend, which
must all validate; and hand-made wrong answers, each of which must give a
problem that names the spot.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from harness.contract.clauses import clause_ids
from harness.contract.openapi import check_answer, document, operation_for, validate_response
from harness.db import Database
from harness.provider import ErrorAnswer, Reply
from harness.reference import Settings, create_app
from harness.reference.errors import STATUS_BY_CODE
from harness.targets.inprocess import reference

SECRET = "test-openapi-jwt-secret-0123456789abcdef"
ALICE = uuid.UUID("11111111-1111-4111-8111-111111111111")
BOB = uuid.UUID("22222222-2222-4222-8222-222222222222")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
NOW = "2025-08-12T14:34:08.861Z"


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, item[method])
        for path, item in document()["paths"].items()
        for method in METHODS
        if method in item
    ]


def deref(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` chain (for the document checks only)."""
    while "$ref" in node:
        target: Any = document()
        for token in node["$ref"].removeprefix("#/").split("/"):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


# -- the document ----------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate

    assert document()["openapi"] == "3.1.0"
    validate(document(), cls=OpenAPIV31SpecValidator)


def test_the_document_is_read_once() -> None:
    assert document() is document()


def test_every_operation_names_existing_clauses() -> None:
    known = set(clause_ids())
    ids = [spec["operationId"] for _, _, spec in operations()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for method, path, spec in operations():
        clauses = spec.get("x-contract-clauses")
        assert clauses, f"{method} {path}: no x-contract-clauses"
        assert set(clauses) <= known, f"{method} {path}: unknown {set(clauses) - known}"


def test_the_routes_are_those_of_the_reference_backend() -> None:
    # FastAPI's own description of the app: it walks included routers, whose
    # representation in `app.routes` differs between FastAPI versions.
    from fastapi.openapi.utils import get_openapi

    app = create_app(Settings(database_url="postgresql://unused", provider_base_url="http://x"))
    paths = get_openapi(title="reference", version="1", routes=app.routes)["paths"]
    served = {(method.upper(), path) for path, item in paths.items() for method in item}
    described = {(method, path) for method, path, _ in operations()}
    assert served == described


def test_operation_for_matches_concrete_paths() -> None:
    op = operation_for("get", "/api/chat/messages?session_id=s1&since_ts=x")
    assert op is not None
    assert (op.method, op.path, op.operation_id) == ("GET", "/api/chat/messages", "getMessages")
    assert "C-MSG-9" in op.clauses
    assert op.spec["operationId"] == "getMessages"
    assert operation_for("PUT", "/api/chat") is None
    assert operation_for("GET", "/api/nope") is None


def test_links_point_at_real_operations_and_parameters() -> None:
    by_id = {spec["operationId"]: spec for _, _, spec in operations()}
    count = 0
    for method, path, spec in operations():
        for status, response in spec["responses"].items():
            for name, link in deref(response).get("links", {}).items():
                link = deref(link)
                where = f"{method} {path} {status} link {name}"
                target = by_id.get(link["operationId"])
                assert target is not None, f"{where}: no operation {link['operationId']}"
                names = {deref(p)["name"] for p in target.get("parameters", [])}
                assert set(link.get("parameters", {})) <= names, where
                assert "requestBody" not in link or "requestBody" in target, where
                count += 1
    assert count >= 10


def test_each_error_status_allows_only_its_codes() -> None:
    """C-ERR-2: the `code` enum of every error response fits its status."""
    unrouted = document()["x-chat-harness-unrouted"]
    responses = [
        (f"{method} {path}", status, response)
        for method, path, spec in operations()
        for status, response in spec["responses"].items()
    ] + [(where, status, r) for where in ("unknownPath", "wrongMethod")
         for status, r in unrouted[where].items()]
    for where, status, response in responses:
        if int(status) < 400:
            continue
        schema = deref(response)["content"]["application/json"]["schema"]
        assert schema["$ref"] == "#/components/schemas/Error", where
        codes = schema["properties"]["code"]["enum"]
        assert codes and all(STATUS_BY_CODE[c] == int(status) for c in codes), (where, codes)


# -- answers of the reference backend ------------------------------------------------------


@dataclass
class Answer:
    method: str
    path: str
    status: int
    headers: httpx.Headers
    body: bytes

    def problems(self) -> list[str]:
        return validate_response(self.method, self.path, self.status, self.headers, self.body)


def _token(user: uuid.UUID, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode({'sub': str(user)}, secret, 'HS256')}"}


def _user(id: str, content: str, at: str = NOW, **extra: Any) -> dict[str, Any]:
    return {"id": id, "role": "user", "content": content, "timestamp": at, **extra}


def _assistant(id: str, content: str, reply_to: str, **extra: Any) -> dict[str, Any]:
    return {"id": id, "role": "assistant", "content": content, "timestamp": "2025-08-12T14:34:10Z",
            "user_message_id": reply_to, "model": "test/model", "total_tokens": 9, **extra}


@dataclass(frozen=True)
class Sample:
    """A request to the reference backend, the status it must get, the provider's answer."""

    status: int
    method: str
    path: str
    json: Any = None
    plan: Any = None  # what the scripted provider answers, if the request reaches it
    user: uuid.UUID | None = ALICE  # whose token; None: no Authorization header
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None

    def kwargs(self) -> dict[str, Any]:
        headers = {**(_token(self.user) if self.user else {}), **self.headers}
        kwargs: dict[str, Any] = {"headers": headers}
        if self.content is not None:
            kwargs["content"] = self.content
        elif self.json is not None:
            kwargs["json"] = self.json
        return kwargs


CHAT = {"message": "hi", "model": "test/model", "messages": [_user("u1", "hi")], "sessionId": "s1"}
PAIR = [_user("u1", "hi", originalModel="test/model"), _assistant("a1", "hello", "u1")]
SYSTEM = {**_user("sys", "be brief"), "role": "system"}
MANY = [_user(f"m{i}", "x") for i in range(101)]
OTHER_KEY = {"Authorization": _token(ALICE, "another-secret-0123456789abcdef0123")["Authorization"]}
ERROR_CHUNK = Reply("a b c d e f", chunk_chars=2, error_after=2, error_code=429)
MESSAGES = "/api/chat/messages"
# In order: later samples rely on what earlier ones stored.
SAMPLES: dict[str, Sample] = {
    "health 200": Sample(200, "GET", "/api/health", user=None),
    "chat 200": Sample(200, "POST", "/api/chat", CHAT, Reply("Hello **there**"),
                       headers={"x-request-id": "abc"}),
    "chat 200 without history": Sample(200, "POST", "/api/chat", {"message": "hi", "model": "m"},
                                       Reply("plain", omit_usage=True)),
    "chat 429": Sample(429, "POST", "/api/chat", CHAT, ErrorAnswer(429, retry_after=30)),
    "chat 503": Sample(503, "POST", "/api/chat", CHAT, ErrorAnswer(503)),
    "chat 402": Sample(402, "POST", "/api/chat", CHAT, ErrorAnswer(402)),
    "chat 502": Sample(502, "POST", "/api/chat", CHAT, ErrorAnswer(401)),
    "chat 504": Sample(504, "POST", "/api/chat", CHAT, Reply("late", delay_ms=2000)),
    "chat 400": Sample(400, "POST", "/api/chat", {"message": " ", "model": "m"}),
    "chat 400 malformed": Sample(400, "POST", "/api/chat", content=b"{nope"),
    "chat 413": Sample(413, "POST", "/api/chat", {"message": "x" * 20001, "model": "m"}),
    "chat 422": Sample(422, "POST", "/api/chat", {**CHAT, "current_message_id": "nope"}),
    "stream 200": Sample(200, "POST", "/api/chat/stream", CHAT, Reply("line one\nline two")),
    "stream 200 error line": Sample(200, "POST", "/api/chat/stream", CHAT, ERROR_CHUNK),
    "stream 429": Sample(429, "POST", "/api/chat/stream", CHAT, ErrorAnswer(429)),
    "store 201": Sample(201, "POST", MESSAGES,
                        {"sessionId": "s1", "sessionTitle": "Trip", "messages": PAIR}),
    "store 201 single failed": Sample(201, "POST", MESSAGES,
                                      {"sessionId": "s1", "message": _user("u2", "x", error=True)}),
    "store 201 system": Sample(201, "POST", MESSAGES, {"sessionId": "s1", "message": SYSTEM}),
    "store 400": Sample(400, "POST", MESSAGES, {"sessionId": "s1"}),
    "store 404 foreign session": Sample(404, "POST", MESSAGES,
                                        {"sessionId": "s1", "message": _user("b1", "x")}, user=BOB),
    "store 409 foreign message id": Sample(409, "POST", MESSAGES,
                                           {"sessionId": "b", "message": PAIR[0]}, user=BOB),
    "store 413": Sample(413, "POST", MESSAGES, {"sessionId": "s1", "messages": MANY}),
    "store 422 unpaired": Sample(422, "POST", MESSAGES,
                                 {"sessionId": "s1", "message": _assistant("a9", "x", "nope")}),
    "read 200": Sample(200, "GET", f"{MESSAGES}?session_id=s1"),
    "read 200 since": Sample(200, "GET", f"{MESSAGES}?session_id=s1&since_ts={NOW}"),
    "read 400": Sample(400, "GET", MESSAGES),
    "read 400 since": Sample(400, "GET", f"{MESSAGES}?session_id=s1&since_ts=soon"),
    "read 404": Sample(404, "GET", f"{MESSAGES}?session_id=s1", user=BOB),
    "sessions 200": Sample(200, "GET", "/api/chat/sessions"),
    "create 201": Sample(201, "POST", "/api/chat/sessions", {"id": "s2", "title": "Plans"}),
    "create 200": Sample(200, "POST", "/api/chat/sessions", {"id": "s2", "title": "Other"}),
    "create 409": Sample(409, "POST", "/api/chat/sessions", {"id": "s2"}, user=BOB),
    "session 200": Sample(200, "GET", "/api/chat/session?id=s2"),
    "rename 200": Sample(200, "POST", "/api/chat/session", {"id": "s2", "title": "Renamed"}),
    "rename 400": Sample(400, "POST", "/api/chat/session", {"id": "s2", "title": "  "}),
    "rename 404": Sample(404, "POST", "/api/chat/session", {"id": "s2", "title": "M"}, user=BOB),
    "delete 200": Sample(200, "DELETE", "/api/chat/sessions?id=s2"),
    "delete 404": Sample(404, "DELETE", "/api/chat/sessions?id=s2"),
    "delete 400": Sample(400, "DELETE", "/api/chat/sessions"),
    "session 404": Sample(404, "GET", "/api/chat/session?id=s2"),
    "sessions 401": Sample(401, "GET", "/api/chat/sessions", user=None),
    "sessions 401 bad token": Sample(401, "GET", "/api/chat/sessions", headers=OTHER_KEY),
    "unknown path 404": Sample(404, "GET", "/api/nope"),
    "wrong method 405": Sample(405, "PUT", "/api/chat", CHAT),
}
# The database unreachable (C-ERR-2): a second backend, its database on a closed port.
DOWN: dict[str, Sample] = {
    "health 503 database down": Sample(503, "GET", "/api/health", user=None),
    "sessions 503 database down": Sample(503, "GET", "/api/chat/sessions"),
}


async def _collect(db: Database) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}

    async def ask(client: httpx.AsyncClient, name: str, sample: Sample) -> None:
        r = await client.request(sample.method, sample.path, **sample.kwargs())
        answers[name] = Answer(sample.method, sample.path, r.status_code, r.headers, r.content)

    timeout_ms = 1000
    async with reference(db, jwt_secret=SECRET, mutants=frozenset(),
                         provider_timeout_ms=timeout_ms) as target:
        for name, sample in SAMPLES.items():
            if sample.plan is not None:
                target.provider.plan(sample.plan)
            await ask(target.client, name, sample)
    settings = Settings(database_url="postgresql://127.0.0.1:1/none", provider_base_url="http://x",
                        jwt_secret=SECRET, database_timeout_ms=300)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://down.test") as client,
    ):
        for name, sample in DOWN.items():
            await ask(client, name, sample)
    return answers


@pytest.fixture(scope="module")
def answers(database: Database) -> dict[str, Answer]:
    database.reset()
    try:
        return asyncio.run(_collect(database))
    finally:
        database.reset()


@pytest.mark.parametrize("name", [*SAMPLES, *DOWN])
def test_reference_answers_validate(answers: dict[str, Answer], name: str) -> None:
    answer = answers[name]
    expected = (SAMPLES.get(name) or DOWN[name]).status
    assert answer.status == expected, answer.body[:300]
    assert answer.problems() == [], answer.body[:300]


def test_the_samples_show_what_they_are_meant_to(answers: dict[str, Answer]) -> None:
    """Guards the samples themselves: each shows the feature it stands for."""
    assert answers["chat 429"].headers["retry-after"] == "30"
    assert answers["chat 503"].headers["retry-after"] == "60"
    assert answers["chat 200"].headers["x-request-id"] == "abc"
    assert json.loads(answers["chat 200 without history"].body)["data"]["request_id"] is None
    assert b'"__STREAM_ERROR__"' in answers["stream 200 error line"].body
    assert b'"__FINAL_METADATA__"' in answers["stream 200"].body
    assert json.loads(answers["read 200 since"].body)["up_to_date"] is False
    assert json.loads(answers["read 200"].body)["count"] == 4
    assert json.loads(answers["session 200"].body)["session"]["last_model"] is None


def test_a_changed_reference_answer_is_caught(answers: dict[str, Answer]) -> None:
    answer = answers["read 200"]
    body = json.loads(answer.body)
    body["messages"][1]["timestamp"] = "abc"
    problems = validate_response("GET", answer.path, 200, answer.headers, body)
    assert problems[0].startswith("body.messages[1].timestamp: 'abc' is not a 'date-time'")


# -- wrong answers ------------------------------------------------------------------------

JSON = {"content-type": "application/json", "x-request-id": "r1"}


def chat_body() -> dict[str, Any]:
    return {
        "data": {
            "response": "Hello", "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                           "total_tokens": 5},
            "request_id": "u1", "timestamp": NOW, "elapsed_ms": 12, "contentType": "text",
            "id": "gen-1", "model": "test/model",
        },
        "timestamp": NOW,
    }


def session_body() -> dict[str, Any]:
    return {"id": "s1", "title": "Trip", "created_at": NOW, "updated_at": NOW,
            "message_count": 0, "total_tokens": 0, "last_model": None,
            "last_message_preview": None, "last_message_timestamp": None}


def error_body(code: str, **extra: Any) -> dict[str, Any]:
    return {"error": "It failed", "code": code, "timestamp": NOW, **extra}


def rate_limited(**extra: Any) -> dict[str, Any]:
    return error_body("too_many_requests", **{"retryAfter": 30, "suggestions": ["Wait"],
                                              **extra})


def test_the_hand_made_answers_are_valid_as_they_are() -> None:
    assert validate_response("POST", "/api/chat", 200, JSON, chat_body()) == []
    sessions = {"sessions": [session_body()], "count": 1}
    assert validate_response("GET", "/api/chat/sessions", 200, JSON, sessions) == []
    assert validate_response("GET", "/api/chat/x", 404, JSON, error_body("not_found")) == []
    limited = {**JSON, "Retry-After": "30"}
    assert validate_response("POST", "/api/chat", 429, limited, rate_limited()) == []


def test_a_wrong_type_names_the_field() -> None:
    body = chat_body()
    body["data"]["usage"]["total_tokens"] = "5"
    assert validate_response("POST", "/api/chat", 200, JSON, body) == [
        "body.data.usage.total_tokens: '5' is not of type 'integer' (type)"
    ]


def test_a_missing_required_field_is_named() -> None:
    session = session_body()
    del session["title"]
    problems = validate_response(
        "GET", "/api/chat/sessions", 200, JSON, {"sessions": [session], "count": 1}
    )
    assert problems == ["body.sessions[0]: 'title' is a required property (required)"]


def test_an_extra_field_passes_everywhere_but_strict_names_it() -> None:
    # The contract's top: an answer MAY carry fields beyond those a clause lists.
    body = chat_body()
    body["data"]["extra"] = 1
    body["server"] = {"region": "eu"}
    assert validate_response("POST", "/api/chat", 200, JSON, body) == []
    session = {**session_body(), "user_id": "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"}
    sessions = {"sessions": [session], "count": 1, "next": None}
    assert validate_response("GET", "/api/chat/sessions", 200, JSON, sessions) == []
    error = error_body("not_found", request_id="r1", path="/api/chat/x")
    assert validate_response("GET", "/api/chat/x", 404, JSON, error) == []
    strict = check_answer("GET", "/api/chat/sessions", 200, JSON, sessions, strict=True)
    assert [(p.text, p.clause) for p in strict] == [
        ("body: Additional properties are not allowed ('next' was unexpected) "
         "(additionalProperties)", "C-SES-1"),
        ("body.sessions[0]: Additional properties are not allowed ('user_id' was unexpected) "
         "(additionalProperties)", "C-SES-1"),
    ]


def test_other_key_orders_and_iso_forms_pass() -> None:
    body = chat_body()
    body["data"] = dict(reversed(list(body["data"].items())))
    body["timestamp"] = "2025-08-12T14:34:08+00:00"  # C-ERR-1/C-CHAT-4: ISO-8601, no profile
    body["data"]["timestamp"] = "2025-08-12T14:34:08.861234"
    assert validate_response("POST", "/api/chat", 200, JSON, dict(reversed(body.items()))) == []
    session = session_body()
    session["updated_at"] = "2025-08-12 14:34:08.861Z"
    session["last_message_timestamp"] = "2025-08-12T16:34:08.861+02:00"
    assert validate_response("GET", "/api/chat/session", 200, JSON, {"session": session}) == []


def test_an_instant_must_still_be_an_instant() -> None:
    for wrong in ("yesterday", "2025-08-12", "2025-13-12T00:00:00Z", "1755009248860"):
        session = {**session_body(), "created_at": wrong}
        (problem,) = check_answer("GET", "/api/chat/session", 200, JSON, {"session": session})
        assert problem.text.startswith("body.session.created_at: "), wrong
        assert problem.clause == "C-SES-1"


def test_each_problem_names_the_clause_of_the_broken_part() -> None:
    body = chat_body()
    body["data"]["usage"]["total_tokens"] = "5"
    (problem,) = check_answer("POST", "/api/chat", 200, JSON, body)
    assert problem.clause == "C-CHAT-4"
    (problem,) = check_answer("GET", "/api/chat/sessions", 401, JSON, error_body("not_found"))
    assert problem.clause == "C-ERR-2"
    (problem,) = check_answer("GET", "/api/chat/sessions", 401, JSON, {"code": "auth_required",
                                                                        "timestamp": NOW})
    assert (problem.text, problem.clause) == (
        "body: 'error' is a required property (required)", "C-ERR-1")
    (problem,) = check_answer("POST", "/api/chat", 429, JSON, rate_limited())
    assert problem.clause == "C-CHAT-5"
    (problem,) = check_answer("GET", "/api/chat/sessions", 200, {"content-type":
                                                                 "application/json"},
                              {"sessions": [], "count": 0})
    assert (problem.text, problem.clause) == ("header x-request-id: missing (required)",
                                              "C-ERR-1")
    (problem,) = check_answer("GET", "/api/chat/sessions", 201, JSON,
                              {"sessions": [], "count": 0})
    assert problem.clause == "C-SES-1"
    (problem,) = check_answer("DELETE", "/api/chat/sessions", 418, JSON, {})
    assert problem.clause == "C-ERR-2"
    text = {"content-type": "text/plain; charset=utf-8", "x-request-id": "r1"}
    (problem,) = check_answer("POST", "/api/chat/stream", 200, text, "Hello")
    assert problem.clause == "C-STREAM-1"
    stream_error = json.dumps({"__STREAM_ERROR__": {"code": "teapot", "error": "x"}})
    (problem,) = check_answer("POST", "/api/chat/stream", 200, text, f"He\n{stream_error}")
    assert problem.clause == "C-STREAM-3"


def test_a_stream_ends_with_exactly_one_of_the_two_markers() -> None:
    text = {"content-type": "text/plain; charset=utf-8", "x-request-id": "r1"}
    final = {"__FINAL_METADATA__": chat_body()["data"]}
    error = {"__STREAM_ERROR__": {"code": "bad_gateway", "error": "cut"}}
    assert validate_response("POST", "/api/chat/stream", 200, text,
                             "Hi\n" + json.dumps({**final, "trace": "t1"})) == []
    (problem,) = validate_response("POST", "/api/chat/stream", 200, text,
                                   "Hi\n" + json.dumps({**final, **error}))
    assert problem.endswith("(oneOf)")
    (problem,) = validate_response("POST", "/api/chat/stream", 200, text, 'Hi\n{"done": 1}')
    assert problem.endswith("(oneOf)")


def test_a_create_may_say_any_success_a_rename_says_true() -> None:
    created = {"session": session_body(), "success": True}
    assert validate_response("POST", "/api/chat/sessions", 201, JSON, created) == []
    renamed = {"session": session_body(), "success": False}
    (problem,) = check_answer("POST", "/api/chat/session", 200, JSON, renamed)
    assert problem.text == "body.success: True was expected (const)"
    assert problem.clause == "C-SES-3"


def test_a_429_s_suggestions_are_a_list_of_strings_of_any_length() -> None:
    limited = {**JSON, "Retry-After": "30"}
    assert validate_response("POST", "/api/chat", 429, limited, rate_limited(suggestions=[])) == []
    (problem,) = validate_response("POST", "/api/chat", 429, limited,
                                   rate_limited(suggestions="wait"))
    assert problem.startswith("body.suggestions: 'wait' is not of type 'array'")
    no_tips = error_body("too_many_requests", retryAfter=30)
    (problem,) = validate_response("POST", "/api/chat", 429, limited, no_tips)
    assert problem == "body: 'suggestions' is a required property (required)"


def test_an_error_code_that_does_not_fit_its_status() -> None:
    problems = validate_response("GET", "/api/chat/session", 404, JSON, error_body("bad_request"))
    assert problems == ["body.code: 'bad_request' is not one of ['not_found'] (enum)"]
    problems = validate_response("GET", "/api/chat/sessions", 401, JSON, error_body("not_found"))
    assert problems[0].startswith("body.code: 'not_found' is not one of ['auth_required'")


def test_a_429_without_retry_after_header() -> None:
    problems = validate_response("POST", "/api/chat", 429, JSON, rate_limited())
    assert problems == ["header Retry-After: missing (required)"]


def test_a_retry_after_header_that_is_not_the_body_s() -> None:
    limited = {**JSON, "retry-after": "31"}
    assert validate_response("POST", "/api/chat", 429, limited, rate_limited()) == [
        "header Retry-After: '31' differs from body.retryAfter (30)"
    ]
    limited = {**JSON, "retry-after": "soon"}
    assert validate_response("POST", "/api/chat", 429, limited, rate_limited()) == [
        "header Retry-After: 'soon' is not of type 'integer' (type)"
    ]


def test_an_undocumented_status() -> None:
    (problem,) = validate_response("GET", "/api/health", 418, JSON, {"status": "ok"})
    assert problem.startswith("status 418: not documented for GET /api/health")
    (problem,) = validate_response("GET", "/api/nope", 200, JSON, {})
    assert problem.startswith("status 200: not documented for a path that is no route")
    (problem,) = validate_response("PUT", "/api/chat", 200, JSON, {})
    assert problem.startswith("status 200: not documented for no PUT on /api/chat")


def test_a_missing_request_id_and_a_wrong_content_type() -> None:
    problems = validate_response(
        "GET", "/api/health", 200, {"content-type": "text/html"}, b'{"status":"ok"}'
    )
    assert problems == [
        "header content-type: 'text/html' is not 'application/json'",
        "header x-request-id: missing (required)",
    ]


def test_a_body_that_is_not_json() -> None:
    (problem,) = validate_response("GET", "/api/health", 200, JSON, b"<html>ok</html>")
    assert problem.startswith("body: not JSON")


def test_a_500_that_shows_internals() -> None:
    body = error_body("internal_server_error", details='Traceback (most recent call last): ...')
    (problem,) = validate_response("GET", "/api/chat/sessions", 500, JSON, body)
    assert problem.startswith("body.details: ") and problem.endswith("(not)")


def test_a_stream_s_last_line_is_checked() -> None:
    text = {"content-type": "text/plain; charset=utf-8", "x-request-id": "r1"}
    final = json.dumps({"__FINAL_METADATA__": chat_body()["data"]})
    assert validate_response("POST", "/api/chat/stream", 200, text, f"Hello\n{final}") == []
    bad = json.dumps({"__STREAM_ERROR__": {"code": "teapot", "error": "x"}})
    (problem,) = validate_response("POST", "/api/chat/stream", 200, text, f"He\n{bad}".encode())
    assert problem.startswith("body[last line].__STREAM_ERROR__.code: 'teapot' is not one of")
    (problem,) = validate_response("POST", "/api/chat/stream", 200, text, b"Hello")
    assert problem.startswith("body: no newline")
    plain = {**text, "content-type": "text/plain"}
    (problem,) = validate_response("POST", "/api/chat/stream", 200, plain, f"Hi\n{final}")
    assert problem.startswith("header content-type: 'text/plain' is not")


def test_message_items_need_the_millisecond_utc_form() -> None:
    item = {"id": "u1", "role": "user", "content": "hi", "originalModel": None,
            "input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "user_message_id": None,
            "contentType": "text", "elapsed_ms": 0, "completion_id": None,
            "timestamp": "2025-08-12T16:34:08.861+02:00", "error": False, "error_message": None}
    page = {"messages": [item], "count": 1}
    (problem,) = check_answer("GET", "/api/chat/messages", 200, JSON, page)
    assert problem.text.startswith("body.messages[0].timestamp: ")
    assert problem.text.endswith("(pattern)") and problem.clause == "C-MSG-4"
    item["timestamp"] = "2025-08-12T14:34:08.861234Z"  # C-MSG-4: finer digits may come back
    assert validate_response("GET", "/api/chat/messages", 200, JSON, page) == []
    del item["originalModel"]
    item["timestamp"] = NOW
    (problem,) = check_answer("GET", "/api/chat/messages", 200, JSON, page)
    assert (problem.text, problem.clause) == (
        "body.messages[0]: 'originalModel' is a required property (required)", "C-MSG-9")


def test_message_items_name_a_model_where_c_msg_9_says_so() -> None:
    base = {"id": "m1", "content": "hi", "input_tokens": 0, "output_tokens": 0,
            "total_tokens": 0, "user_message_id": None, "contentType": "text",
            "elapsed_ms": 0, "completion_id": None, "timestamp": NOW, "error": False,
            "error_message": None}
    system = {**base, "role": "system"}  # C-MSG-9 names no model field for system messages
    assert validate_response("GET", "/api/chat/messages", 200, JSON,
                             {"messages": [system], "count": 1}) == []
    assistant = {**base, "role": "assistant"}
    assert validate_response("GET", "/api/chat/messages", 200, JSON,
                             {"messages": [assistant], "count": 1}) == [
        "body.messages[0]: 'model' is a required property (required)"
    ]
    both = {**assistant, "model": "m", "originalModel": "m"}  # an extra field: fine
    assert validate_response("GET", "/api/chat/messages", 200, JSON,
                             {"messages": [both], "count": 1}) == []
