"""POST /api/chat: request_id (C-CHAT-2), provider context (C-CHAT-3), answers (C-CHAT-4..6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from refkit import (
    PROVIDER_BASE,
    QUESTION,
    RESENT_ID,
    Api,
    FakeProvider,
    assistant_msg,
    backend,
    completion,
    error_of,
    failure,
    hang,
    seed_history,
    user_msg,
)

pytestmark = pytest.mark.anyio


async def chat_ok(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.chat(body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


# --- C-CHAT-2: request_id -------------------------------------------------------


async def test_seed_resend_after_failure_pairs_with_the_new_message(api: Api) -> None:
    data = await chat_ok(
        api,
        {"message": QUESTION, "messages": seed_history(), "model": "google/gemini-2.5-flash-lite"},
    )
    assert data["request_id"] == RESENT_ID


async def test_seed_context_is_chronological_and_drops_the_failed_message(api: Api) -> None:
    await chat_ok(api, {"message": QUESTION, "messages": seed_history(), "model": "m"})
    sent = api.provider.bodies[0]
    assert sent["model"] == "m"
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("user", "List some LLM providers"),
        ("assistant", "Here are some LLM providers"),
        ("user", "alternatives to OpenRouter?"),
        ("assistant", "Alternatives to OpenRouter include"),
        ("user", QUESTION),
    ]
    assert all(set(m) == {"role", "content"} for m in sent["messages"])


async def test_last_match_is_by_timestamp_not_position(api: Api) -> None:
    messages = [user_msg("late", "hi", 10), user_msg("early", "hi", 5)]
    data = await chat_ok(api, {"message": "hi", "messages": messages, "model": "m"})
    assert data["request_id"] == "late"


async def test_equal_timestamps_fall_back_to_position(api: Api) -> None:
    messages = [user_msg("first", "hi", 5), user_msg("second", "hi", 5)]
    data = await chat_ok(api, {"message": "hi", "messages": messages, "model": "m"})
    assert data["request_id"] == "second"


async def test_match_compares_trimmed_text_and_user_role_only(api: Api) -> None:
    messages = [user_msg("u1", "  hi\n", 1), assistant_msg("a1", "hi", 2)]
    data = await chat_ok(api, {"message": "hi  ", "messages": messages, "model": "m"})
    assert data["request_id"] == "u1"


async def test_current_message_id_wins(api: Api) -> None:
    messages = [user_msg("u1", "hi", 1), user_msg("u2", "hi", 2)]
    body = {"message": "hi", "messages": messages, "model": "m", "current_message_id": "u1"}
    data = await chat_ok(api, body)
    assert data["request_id"] == "u1"
    # The context ends with the trigger: u2 comes after it.
    assert api.provider.bodies[0]["messages"] == [{"role": "user", "content": "hi"}]


async def test_current_message_id_not_in_messages_is_422(api: Api) -> None:
    messages = [user_msg("u1", "hi", 1), assistant_msg("a1", "yo", 2)]
    for wanted in ["nope", "a1"]:
        body = {"message": "hi", "messages": messages, "model": "m", "current_message_id": wanted}
        error_of(await api.chat(body), 422, "unprocessable_entity")
    assert api.provider.requests == []


async def test_no_matching_user_message_is_422(api: Api) -> None:
    messages = [user_msg("u1", "something else", 1), assistant_msg("a1", "hi", 2)]
    error_of(
        await api.chat({"message": "hi", "messages": messages, "model": "m"}),
        422,
        "unprocessable_entity",
    )
    assert api.provider.requests == []


@pytest.mark.parametrize("messages", [None, []])
async def test_without_messages_request_id_is_null_or_current(
    api: Api, messages: list[Any] | None
) -> None:
    body: dict[str, Any] = {"message": " hi ", "model": "m"}
    if messages is not None:
        body["messages"] = messages
    assert (await chat_ok(api, body))["request_id"] is None
    body["current_message_id"] = "client-42"
    assert (await chat_ok(api, body))["request_id"] == "client-42"
    assert [b["messages"] for b in api.provider.bodies] == [
        [{"role": "user", "content": " hi "}]
    ] * 2


# --- C-CHAT-3: what the provider gets -------------------------------------------


async def test_retried_failed_trigger_is_sent_but_other_failures_are_not(api: Api) -> None:
    messages = [
        user_msg("u1", "first", 1, error=True),
        user_msg("u2", "second", 2),
        assistant_msg("a2", "answer", 3, "u2", error=True, error_message="cut"),
        user_msg("u3", "again", 4, error=True),
    ]
    body = {"message": "again", "messages": messages, "model": "m", "current_message_id": "u3"}
    assert (await chat_ok(api, body))["request_id"] == "u3"
    assert api.provider.bodies[0]["messages"] == [
        {"role": "user", "content": "second"},
        {"role": "user", "content": "again"},
    ]


async def test_messages_after_the_trigger_are_not_sent(api: Api) -> None:
    messages = [
        user_msg("u1", "q", 1),
        assistant_msg("a1", "a", 2, "u1"),
        user_msg("u2", "other", 3),
        {"id": "s1", "role": "system", "content": "be brief", "timestamp": "2025-08-12T14:33:00Z"},
    ]
    await chat_ok(api, {"message": "q", "messages": messages, "model": "m"})
    assert api.provider.bodies[0]["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "q"},
    ]


async def test_provider_request_url_headers_and_model(api: Api) -> None:
    await chat_ok(api, {"message": "hi", "model": "vendor/model:free"})
    request = api.provider.requests[0]
    assert str(request.url) == f"{PROVIDER_BASE}/chat/completions"
    assert request.method == "POST"
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert api.provider.bodies[0]["model"] == "vendor/model:free"
    assert "stream" not in api.provider.bodies[0]


# --- C-CHAT-1, C-CHAT-4, C-CHAT-6 -----------------------------------------------


async def test_success_shape(api: Api) -> None:
    response = await api.chat({"message": "hi", "model": "asked/model"})
    assert response.status_code == 200
    body = response.json()
    data = body["data"]
    assert data["response"] == "Hello!"
    assert data["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert data["id"] == "gen-1"
    assert data["model"] == "test/model-a"
    assert data["contentType"] in ("text", "markdown")
    assert isinstance(data["elapsed_ms"], int) and not isinstance(data["elapsed_ms"], bool)
    assert data["timestamp"].endswith("Z") and body["timestamp"].endswith("Z")


async def test_missing_usage_id_and_model_have_defaults(api: Api) -> None:
    api.provider.script(
        completion("one", usage=None, id=None, model=None),
        completion("two", usage={"prompt_tokens": 3}),
    )
    first = await chat_ok(api, {"message": "hi", "model": "asked/model"})
    assert first["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert first["id"] is None
    assert first["model"] == "asked/model"
    second = await chat_ok(api, {"message": "hi", "model": "asked/model"})
    assert second["usage"] == {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 0}


async def test_message_length_limits(api: Api) -> None:
    assert (await api.chat({"message": " " + "é" * 20_000 + " ", "model": "m"})).status_code == 200
    error_of(await api.chat({"message": "é" * 20_001, "model": "m"}), 413, "payload_too_large")


async def test_chat_stores_nothing(api: Api) -> None:
    await chat_ok(
        api, {"message": QUESTION, "messages": seed_history(), "model": "m", "sessionId": "conv_1"}
    )
    assert api.rows("SELECT id FROM chat_sessions") == []
    assert api.rows("SELECT id FROM chat_messages") == []


# --- C-CHAT-3 retries, C-CHAT-5 mapping -----------------------------------------


async def test_429_with_retry_after_seconds(api: Api) -> None:
    api.provider.script(failure(429, "slow down", {"Retry-After": "7"}))
    response = await api.chat({"message": "hi", "model": "m"})
    body = error_of(response, 429, "too_many_requests")
    assert body["retryAfter"] == 7
    assert response.headers["retry-after"] == "7"
    assert isinstance(body["suggestions"], list) and body["suggestions"]
    assert all(isinstance(s, str) for s in body["suggestions"])
    assert body["details"] == "slow down"
    assert len(api.provider.requests) == 1


async def test_429_with_fractional_retry_after_rounds_up(api: Api) -> None:
    api.provider.script(failure(429, headers={"Retry-After": "1.2"}))
    assert (
        error_of(await api.chat({"message": "hi", "model": "m"}), 429, "too_many_requests")[
            "retryAfter"
        ]
        == 2
    )


async def test_429_without_retry_after_defaults_to_60(api: Api) -> None:
    api.provider.script(failure(429))
    response = await api.chat({"message": "hi", "model": "m"})
    assert error_of(response, 429, "too_many_requests")["retryAfter"] == 60
    assert response.headers["retry-after"] == "60"


async def test_429_with_http_date(api: Api) -> None:
    api.provider.script(failure(429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}))
    response = await api.chat({"message": "hi", "model": "m"})
    body = error_of(response, 429, "too_many_requests")
    assert isinstance(body["retryAfter"], int) and body["retryAfter"] > 60
    assert response.headers["retry-after"] == str(body["retryAfter"])


async def test_503_maps_with_retry_after_and_is_not_retried(api: Api) -> None:
    api.provider.script(failure(503, headers={"Retry-After": "12"}))
    response = await api.chat({"message": "hi", "model": "m"})
    assert error_of(response, 503, "service_unavailable")["retryAfter"] == 12
    assert response.headers["retry-after"] == "12"
    assert len(api.provider.requests) == 1


@pytest.mark.parametrize(
    ("status", "expected", "code"),
    [
        (402, 402, "payment_required"),
        (400, 400, "bad_request"),
        (401, 502, "bad_gateway"),
        (403, 502, "bad_gateway"),
        (404, 502, "bad_gateway"),
        (408, 502, "bad_gateway"),
        (422, 502, "bad_gateway"),
        (302, 502, "bad_gateway"),
    ],
)
async def test_other_statuses_are_mapped_and_not_retried(
    api: Api, status: int, expected: int, code: str
) -> None:
    api.provider.script(failure(status))
    error_of(await api.chat({"message": "hi", "model": "m"}), expected, code)
    assert len(api.provider.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 504, 599])
async def test_one_5xx_then_success_is_200(api: Api, status: int) -> None:
    api.provider.script(failure(status), completion("recovered"))
    assert (await chat_ok(api, {"message": "hi", "model": "m"}))["response"] == "recovered"
    assert len(api.provider.requests) == 2


async def test_connection_errors_are_retried_twice(api: Api) -> None:
    api.provider.script(httpx.ConnectError("refused"), httpx.ReadError("reset"), completion("ok"))
    assert (await chat_ok(api, {"message": "hi", "model": "m"}))["response"] == "ok"
    assert len(api.provider.requests) == 3


async def test_three_failures_are_502(api: Api) -> None:
    api.provider.script(failure(500), httpx.ConnectError("refused"), failure(502), completion())
    error_of(await api.chat({"message": "hi", "model": "m"}), 502, "bad_gateway")
    assert len(api.provider.requests) == 3


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, json={"error": {"code": 500, "message": "oops"}}),
        httpx.Response(200, json={"id": "gen", "choices": []}),
        httpx.Response(200, json={"id": "gen"}),
        completion("   \n "),
        completion(""),
        httpx.Response(200, json={"choices": [{"message": {"content": None}}]}),
        httpx.Response(200, content=b"<html>not json</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
    ids=[
        "error-body",
        "no-choices",
        "choices-missing",
        "blank",
        "empty",
        "null-content",
        "not-json",
        "array",
    ],
)
async def test_unusable_200_is_502_and_not_retried(api: Api, reply: httpx.Response) -> None:
    api.provider.script(reply)
    error_of(await api.chat({"message": "hi", "model": "m"}), 502, "bad_gateway")
    assert len(api.provider.requests) == 1


async def test_timeout_is_504_and_not_retried(db: str) -> None:
    provider = FakeProvider(hang, completion())
    async with backend(db, provider, provider_timeout_ms=50) as api:
        error_of(await api.chat({"message": "hi", "model": "m"}), 504, "gateway_timeout")
        assert len(provider.requests) == 1


async def test_httpx_timeout_is_504(api: Api) -> None:
    api.provider.script(httpx.ReadTimeout("slow"), completion())
    error_of(await api.chat({"message": "hi", "model": "m"}), 504, "gateway_timeout")
    assert len(api.provider.requests) == 1


async def test_provider_lone_surrogate_does_not_break_the_answer(api: Api) -> None:
    api.provider.script(
        httpx.Response(200, content=b'{"choices":[{"message":{"content":"a\\ud800"}}]}')
    )
    response = await api.chat({"message": "hi", "model": "m"})
    assert response.status_code == 200
    assert response.json()["data"]["response"] == "a\ud800"
