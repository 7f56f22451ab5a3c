"""C-ERR-1..3: the error envelope, request ids, and bad input that is never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from refkit import Api, backend, error_of, user_msg

pytestmark = pytest.mark.anyio


async def test_unknown_route_is_404_envelope(api: Api) -> None:
    response = await api.request("GET", "/api/nope")
    error_of(response, 404, "not_found")


async def test_unknown_route_without_auth_is_still_404(api: Api) -> None:
    error_of(await api.request("GET", "/api/chat/nope", user=None), 404, "not_found")


async def test_wrong_method_is_405_envelope(api: Api) -> None:
    response = await api.request("PUT", "/api/chat")
    body = error_of(response, 405, "method_not_allowed")
    assert "PUT" in body["error"]
    assert "POST" in response.headers["allow"]


async def test_405_allow_names_every_method_of_a_path_served_by_two_routes(api: Api) -> None:
    response = await api.request("PUT", "/api/chat/messages")
    error_of(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_request_id_is_echoed(api: Api) -> None:
    response = await api.request("GET", "/api/health", headers={"x-request-id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    response = await api.request("GET", "/api/nope", headers={"x-request-id": "req-43"})
    assert response.headers["x-request-id"] == "req-43"


async def test_request_id_is_generated(api: Api) -> None:
    first = await api.request("GET", "/api/health")
    second = await api.request("GET", "/api/health")
    assert first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def _post_raw(api: Api, path: str, content: bytes) -> Any:
    return await api.request(
        "POST", path, content=content, headers={"content-type": "application/json"}
    )


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/messages", "/api/chat/sessions"])
@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"",
        b"   ",
        b"nul\x00",
        b"\xff\xfe",
        b"[" * 100_000,
        b"[1, 2]",
        b'"text"',
        b"null",
        b'{"a": 1' + b"1" * 5000 + b"}",
    ],
    ids=[
        "truncated",
        "empty",
        "blank",
        "garbage",
        "not-utf8",
        "deep",
        "array",
        "string",
        "null",
        "huge-int",
    ],
)
async def test_malformed_bodies_are_400(api: Api, path: str, content: bytes) -> None:
    error_of(await _post_raw(api, path, content), 400, "bad_request")


async def test_body_over_10_mib_is_413(api: Api) -> None:
    content = json.dumps({"sessionId": "s", "message": user_msg("m", "x" * (10 * 1024 * 1024), 0)})
    error_of(await _post_raw(api, "/api/chat/messages", content.encode()), 413, "payload_too_large")
    assert api.rows("SELECT id FROM chat_messages") == []


def _msg(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = user_msg("m1", "hello", 0)
    for key, value in changes.items():
        if value is _DROP:
            message.pop(key)
        else:
            message[key] = value
    return message


_DROP = object()

BAD_MESSAGES = [
    ("id", {"id": _DROP}),
    ("id", {"id": 5}),
    ("id", {"id": ""}),
    ("id", {"id": "x" * 600}),
    ("role", {"role": _DROP}),
    ("role", {"role": "robot"}),
    ("content", {"content": _DROP}),
    ("content", {"content": None}),
    ("content", {"content": "a\x00b"}),
    ("content", {"content": "a\ud800b"}),
    ("timestamp", {"timestamp": _DROP}),
    ("timestamp", {"timestamp": "yesterday"}),
    ("timestamp", {"timestamp": "2025-13-45T00:00:00Z"}),
    ("timestamp", {"timestamp": 1755009248861}),
    ("timestamp", {"timestamp": "0001-01-01T00:00:00+01:00"}),
    ("input_tokens", {"input_tokens": True}),
    ("input_tokens", {"input_tokens": "5"}),
    ("input_tokens", {"input_tokens": 1.5}),
    ("output_tokens", {"output_tokens": -1}),
    ("total_tokens", {"total_tokens": 2**31}),
    ("elapsed_ms", {"elapsed_ms": 10**30}),
    ("error", {"error": "true"}),
    ("error", {"error": 1}),
    ("contentType", {"contentType": "html"}),
    ("originalModel", {"originalModel": "m\x00"}),
    ("error_message", {"error_message": "\udfff"}),
    ("user_message_id", {"user_message_id": 7}),
]


@pytest.mark.parametrize(("field", "changes"), BAD_MESSAGES)
async def test_bad_messages_are_400_naming_the_field(
    api: Api, field: str, changes: dict[str, Any]
) -> None:
    # Sent as raw JSON so lone surrogates arrive exactly as a client would send them.
    content = json.dumps(
        {"sessionId": "s1", "messages": [user_msg("m0", "ok", 0), _msg(**changes)]}
    )
    body = error_of(
        await _post_raw(api, "/api/chat/messages", content.encode()), 400, "bad_request"
    )
    assert field in body["error"], body
    assert api.rows("SELECT id FROM chat_sessions") == []


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("message", {"sessionId": "s1"}),
        ("message", {"sessionId": "s1", "message": _msg(), "messages": [_msg()]}),
        ("messages", {"sessionId": "s1", "messages": []}),
        ("messages", {"sessionId": "s1", "messages": {"id": "m1"}}),
        ("sessionId", {"message": _msg()}),
        ("sessionId", {"sessionId": 12, "message": _msg()}),
        ("sessionId", {"sessionId": "", "message": _msg()}),
        ("sessionTitle", {"sessionId": "s1", "message": _msg(), "sessionTitle": "t" * 256}),
        ("sessionTitle", {"sessionId": "s1", "message": _msg(), "sessionTitle": 5}),
    ],
)
async def test_bad_store_bodies_are_400(api: Api, field: str, body: dict[str, Any]) -> None:
    response = await api.request("POST", "/api/chat/messages", json=body)
    error = error_of(response, 400, "bad_request")
    assert field in error["error"] + error.get("details", ""), error


async def test_more_than_100_messages_is_413(api: Api) -> None:
    batch = [user_msg(f"m{i}", "x", i) for i in range(101)]
    error_of(await api.store("s1", *batch), 413, "payload_too_large")
    ok = await api.store("s1", *batch[:100])
    assert ok.status_code == 201
    assert ok.json()["count"] == 100


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "session_id"),
        ({"session_id": ""}, "session_id"),
        ({"session_id": "s1", "since_ts": "soon"}, "since_ts"),
        ({"session_id": "s1", "since_ts": ""}, "since_ts"),
        ({"session_id": "a\x00b"}, "session_id"),
    ],
)
async def test_bad_message_queries_are_400(api: Api, query: dict[str, str], field: str) -> None:
    await api.store("s1", user_msg("m1", "hi", 0))
    response = await api.request("GET", "/api/chat/messages", params=query)
    assert field in error_of(response, 400, "bad_request")["error"]


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("message", {"model": "m"}),
        ("message", {"message": 5, "model": "m"}),
        ("message", {"message": "   ", "model": "m"}),
        ("message", {"message": "a\x00", "model": "m"}),
        ("model", {"message": "hi"}),
        ("model", {"message": "hi", "model": ""}),
        ("model", {"message": "hi", "model": ["m"]}),
        ("messages", {"message": "hi", "model": "m", "messages": "hi"}),
        ("messages", {"message": "hi", "model": "m", "messages": [{"role": "user"}]}),
        ("current_message_id", {"message": "hi", "model": "m", "current_message_id": 3}),
        ("sessionId", {"message": "hi", "model": "m", "sessionId": 3}),
    ],
)
async def test_bad_chat_bodies_are_400(api: Api, field: str, body: dict[str, Any]) -> None:
    error = error_of(await api.chat(body), 400, "bad_request")
    assert field in error["error"], error
    assert api.provider.requests == []


async def test_database_unreachable_is_503(db: str) -> None:
    nowhere = "postgresql://postgres@/postgres?host=/nonexistent-socket-dir&connect_timeout=1"
    async with backend(nowhere, database_timeout_ms=200) as api:
        response = await api.store("s1", user_msg("m1", "hi", 0))
        error_of(response, 503, "service_unavailable")
        error_of(await api.read("s1"), 503, "service_unavailable")
        error_of(await api.request("GET", "/api/health", user=None), 503, "service_unavailable")


async def test_a_500_shows_no_sql(db: str) -> None:
    # The insert-not-upsert mutant turns a replay into a duplicate-key error.
    async with backend(db, mutants={"insert-not-upsert"}) as api:
        assert (await api.store("s1", user_msg("m1", "hi", 0))).status_code == 201
        response = await api.store("s1", user_msg("m1", "hi", 0))
        body = error_of(response, 500, "internal_server_error")
        text = response.text.lower()
        for leak in ("duplicate", "insert", "chat_messages", "traceback", "psycopg"):
            assert leak not in text, body
