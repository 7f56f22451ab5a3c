"""POST /api/chat/stream (C-STREAM-1..3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from refkit import (
    QUESTION,
    RESENT_ID,
    Api,
    FakeProvider,
    backend,
    completion,
    error_chunk,
    error_of,
    failure,
    hang,
    seed_history,
    split_stream,
    sse,
    sse_then,
    token_chunk,
    usage_chunk,
    user_msg,
)

pytestmark = pytest.mark.anyio

PIECES = ["Hello", ",\n", " **world**\n\n", "- a\n", "done", "\n"]


async def stream(api: Api, body: dict[str, Any] | None = None) -> httpx.Response:
    body = body or {"message": "hi", "model": "asked/model"}
    return await api.request("POST", "/api/chat/stream", json=body)


async def streamed_ok(api: Api, body: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    response = await stream(api, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-request-id"]
    return split_stream(response.text)


async def test_text_then_final_metadata(api: Api) -> None:
    api.provider.script(
        sse(*[token_chunk(p) for p in PIECES], token_chunk(finish="stop"), usage_chunk())
    )
    body = {"message": QUESTION, "messages": seed_history(), "model": "asked/model"}
    text, final = await streamed_ok(api, body)
    data = final["__FINAL_METADATA__"]
    assert text == "".join(PIECES) == data["response"]
    assert "__FINAL_METADATA__" not in text
    assert data["request_id"] == RESENT_ID
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert data["id"] == "gen-s" and data["model"] == "test/model-s"
    assert isinstance(data["elapsed_ms"], int) and data["contentType"] in ("text", "markdown")
    sent = api.provider.bodies[0]
    assert sent["stream"] is True and sent["model"] == "asked/model"
    assert sent["messages"][-1] == {"role": "user", "content": QUESTION}


async def test_missing_usage_and_ids_have_defaults(api: Api) -> None:
    api.provider.script(sse({"choices": [{"delta": {"content": "x"}}]}))
    _, final = await streamed_ok(api)
    data = final["__FINAL_METADATA__"]
    assert data["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert data["id"] is None and data["model"] == "asked/model"


async def test_end_without_done_after_finish_reason_is_complete(api: Api) -> None:
    api.provider.script(sse(token_chunk("ok"), token_chunk(finish="stop"), done=False))
    text, final = await streamed_ok(api)
    assert text == "ok" and final["__FINAL_METADATA__"]["response"] == "ok"


async def test_json_answer_to_a_stream_request(api: Api) -> None:
    api.provider.script(completion("whole answer"))
    text, final = await streamed_ok(api)
    assert text == "whole answer" == final["__FINAL_METADATA__"]["response"]


# --- C-STREAM-2: failures before the first token are JSON errors ------------------


async def test_http_429_before_stream_is_json(api: Api) -> None:
    api.provider.script(failure(429, headers={"Retry-After": "9"}))
    response = await stream(api)
    assert error_of(response, 429, "too_many_requests")["retryAfter"] == 9
    assert response.headers["retry-after"] == "9"


async def test_error_chunk_before_first_token_is_mapped_by_code(api: Api) -> None:
    api.provider.script(sse(error_chunk(429)), sse(error_chunk("402")), sse(error_chunk(500)))
    error_of(await stream(api), 429, "too_many_requests")
    error_of(await stream(api), 402, "payment_required")
    error_of(await stream(api), 502, "bad_gateway")
    assert len(api.provider.requests) == 3


async def test_5xx_then_stream_is_retried(api: Api) -> None:
    api.provider.script(failure(500), httpx.ConnectError("refused"), sse(token_chunk("ok")))
    text, _ = await streamed_ok(api)
    assert text == "ok" and len(api.provider.requests) == 3


@pytest.mark.parametrize(
    "reply",
    [sse(), sse(token_chunk("  \n"), token_chunk(finish="stop")), sse(usage_chunk())],
    ids=["nothing", "blank", "usage-only"],
)
async def test_empty_answer_is_502(api: Api, reply: httpx.Response) -> None:
    api.provider.script(reply)
    error_of(await stream(api), 502, "bad_gateway")


async def test_headers_timeout_is_504(db: str) -> None:
    async with backend(db, FakeProvider(hang), provider_timeout_ms=50) as api:
        error_of(await stream(api), 504, "gateway_timeout")


async def test_first_token_timeout_is_504(db: str) -> None:
    # Headers and a comment arrive, the first token never does.
    async with backend(db, FakeProvider(sse_then([], None)), provider_timeout_ms=50) as api:
        error_of(await stream(api), 504, "gateway_timeout")
        assert len(api.provider.requests) == 1


async def test_leading_blank_pieces_are_kept(api: Api) -> None:
    api.provider.script(sse(token_chunk("\n"), token_chunk("x")))
    text, final = await streamed_ok(api)
    assert text == "\nx" == final["__FINAL_METADATA__"]["response"]


# --- C-STREAM-3: failures after the first token end with __STREAM_ERROR__ ---------


async def test_error_chunk_mid_stream(api: Api) -> None:
    api.provider.script(sse(token_chunk("part"), error_chunk(429, "slow down")))
    text, final = await streamed_ok(api)
    assert text == "part"
    assert final == {
        "__STREAM_ERROR__": {
            "code": "too_many_requests",
            "error": final["__STREAM_ERROR__"]["error"],
            "retryAfter": 60,
        }
    }
    api.provider.script(sse(token_chunk("part"), error_chunk(500)))
    _, final = await streamed_ok(api)
    assert final["__STREAM_ERROR__"]["code"] == "bad_gateway"
    assert "retryAfter" not in final["__STREAM_ERROR__"]


async def test_cut_connection_mid_stream(api: Api) -> None:
    api.provider.script(sse_then([token_chunk("part")], httpx.RemoteProtocolError("cut")))
    text, final = await streamed_ok(api)
    assert text == "part"
    assert final["__STREAM_ERROR__"]["code"] == "bad_gateway"


async def test_end_without_done_or_finish_reason_is_a_cut(api: Api) -> None:
    api.provider.script(sse(token_chunk("part"), done=False))
    text, final = await streamed_ok(api)
    assert text == "part" and final["__STREAM_ERROR__"]["code"] == "bad_gateway"


async def test_gap_between_tokens_is_gateway_timeout(db: str) -> None:
    provider = FakeProvider(sse_then([token_chunk("part")], None))
    async with backend(db, provider, provider_timeout_ms=50) as api:
        text, final = await streamed_ok(api)
        assert text == "part"
        assert final["__STREAM_ERROR__"]["code"] == "gateway_timeout"
        assert "__FINAL_METADATA__" not in final


async def test_bad_request_is_json_before_streaming(api: Api) -> None:
    error_of(await stream(api, {"message": "", "model": "m"}), 400, "bad_request")
    body = {"message": "hi", "messages": [user_msg("u1", "other", 0)], "model": "m"}
    error_of(await stream(api, body), 422, "unprocessable_entity")
    assert api.provider.requests == []


async def test_mutant_stream_loses_newlines(db: str) -> None:
    provider = FakeProvider(sse(*[token_chunk(p) for p in PIECES]))
    async with backend(db, provider, mutants={"stream-loses-newlines"}) as api:
        text, final = await streamed_ok(api)
        assert text != final["__FINAL_METADATA__"]["response"]
