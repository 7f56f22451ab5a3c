"""Helpers for the reference backend's tests: tokens, messages, a scripted provider, a client."""

from __future__ import annotations

import asyncio
import json
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import psycopg
from psycopg.rows import dict_row

from harness.reference import Settings, create_app

SECRET = "refkit-jwt-secret-0123456789abcdef0123456789"
ALICE = uuid.UUID("11111111-1111-4111-8111-111111111111")
BOB = uuid.UUID("22222222-2222-4222-8222-222222222222")
PROVIDER_BASE = "http://provider.test/api/v1"
BASE_TIME = datetime(2025, 8, 12, 14, 34, 0, tzinfo=UTC)


def token(
    user: uuid.UUID | str = ALICE, *, secret: str = SECRET, algorithm: str = "HS256", **claims: Any
) -> str:
    payload: dict[str, Any] = {"sub": str(user), **claims}
    with warnings.catch_warnings():
        # HS512 wants a 64-byte key; the test secret is shorter on purpose.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm=algorithm)


def bearer(user: uuid.UUID | str = ALICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def ts(seconds: float) -> str:
    """The timestamp `seconds` after BASE_TIME, as a JS client writes it."""
    moment = BASE_TIME + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def user_msg(id: str, content: str, at: float, **extra: Any) -> dict[str, Any]:
    return {"id": id, "role": "user", "content": content, "timestamp": ts(at), **extra}


def assistant_msg(
    id: str, content: str, at: float, reply_to: str | None = None, **extra: Any
) -> dict[str, Any]:
    message = {"id": id, "role": "assistant", "content": content, "timestamp": ts(at), **extra}
    if reply_to is not None:
        message["user_message_id"] = reply_to
    return message


# --- the provider --------------------------------------------------------------

Reply = httpx.Response | Exception | Callable[[httpx.Request], Awaitable[httpx.Response]]


def completion(
    content: str = "Hello!",
    *,
    model: str | None = "test/model-a",
    id: str | None = "gen-1",
    usage: Any = "default",
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {
        "object": "chat.completion",
        "created": 1755009410,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        **extra,
    }
    if id is not None:
        body["id"] = id
    if model is not None:
        body["model"] = model
    if usage == "default":
        body["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    elif usage is not None:
        body["usage"] = usage
    return httpx.Response(200, json=body)


def failure(
    status: int, message: str = "upstream says no", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": status, "message": message}}, headers=headers
    )


async def hang(request: httpx.Request) -> httpx.Response:
    """A provider that never answers (the backend's timeout must end the wait)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class FakeProvider:
    """An OpenRouter stand-in behind `httpx.MockTransport`: replies in order, then a default."""

    def __init__(self, *replies: Reply) -> None:
        self.replies: list[Reply] = list(replies)
        self.requests: list[httpx.Request] = []

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else completion()
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return await reply(request)
        return reply

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


# --- the backend ---------------------------------------------------------------


class Api:
    """An httpx client on the in-process backend; requests are Alice's unless told."""

    def __init__(self, client: httpx.AsyncClient, provider: FakeProvider, url: str) -> None:
        self.client = client
        self.provider = provider
        self.url = url

    async def request(
        self, method: str, path: str, *, user: uuid.UUID | None = ALICE, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if user is not None:
            headers.setdefault("Authorization", f"Bearer {token(user)}")
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def chat(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return await self.request("POST", "/api/chat", json=body, **kwargs)

    async def store(
        self,
        session_id: str,
        *messages: dict[str, Any],
        title: str | None = None,
        single: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {"sessionId": session_id}
        if single:
            (body["message"],) = messages
        else:
            body["messages"] = list(messages)
        if title is not None:
            body["sessionTitle"] = title
        return await self.request("POST", "/api/chat/messages", json=body, **kwargs)

    async def read(self, session_id: str, **kwargs: Any) -> httpx.Response:
        params = {"session_id": session_id, **kwargs.pop("params", {})}
        return await self.request("GET", "/api/chat/messages", params=params, **kwargs)

    async def session(self, session_id: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", "/api/chat/session", params={"id": session_id}, **kwargs)

    async def read_ok(self, session_id: str, **kwargs: Any) -> list[dict[str, Any]]:
        response = await self.read(session_id, **kwargs)
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Look at the database directly (what was really stored)."""
        with (
            psycopg.connect(self.url, autocommit=True) as conn,
            conn.cursor(row_factory=dict_row) as cur,
        ):
            cur.execute(sql, params)
            return cur.fetchall()


def settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "provider_base_url": PROVIDER_BASE,
        "provider_api_key": "sk-test-key",
        "jwt_secret": SECRET,
    }
    values.update(overrides)
    if "mutants" in values:
        values["mutants"] = frozenset(values["mutants"])
    return Settings(**values)


@asynccontextmanager
async def backend(
    url: str, provider: FakeProvider | None = None, **overrides: Any
) -> AsyncIterator[Api]:
    """A backend with its lifespan entered, as the harness drives one in-process."""
    provider = provider or FakeProvider()
    app = create_app(settings(url, **overrides), provider_transport=provider.transport())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://backend.test"
        ) as client,
    ):
        yield Api(client, provider, url)


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the C-ERR-1 envelope with this status and code; return the body."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["timestamp"], str), body
    assert response.headers.get("x-request-id"), dict(response.headers)
    return body


# --- streaming provider replies ------------------------------------------------


def token_chunk(
    text: str | None = None,
    *,
    finish: str | None = None,
    id: str = "gen-s",
    model: str = "test/model-s",
) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage_chunk(prompt: int = 7, completion: int = 3, total: int = 10) -> dict[str, Any]:
    return {
        "id": "gen-s",
        "model": "test/model-s",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total},
    }


def error_chunk(code: int | str, message: str = "stream broke") -> dict[str, Any]:
    return {
        "id": "gen-s",
        "error": {"code": code, "message": message},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }


def sse_bytes(*chunks: dict[str, Any], done: bool = True) -> bytes:
    out = [b": OPENROUTER PROCESSING\n\n"]
    out += [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def sse(*chunks: dict[str, Any], done: bool = True) -> httpx.Response:
    return httpx.Response(
        200, content=sse_bytes(*chunks, done=done), headers={"content-type": "text/event-stream"}
    )


def sse_then(chunks: list[dict[str, Any]], then: Exception | None) -> httpx.Response:
    """Stream `chunks`, then raise `then` (a cut) or hang forever (a gap) when it is None."""

    async def body() -> AsyncIterator[bytes]:
        yield sse_bytes(*chunks, done=False)
        if then is not None:
            raise then
        await asyncio.Event().wait()

    return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})


def split_stream(text: str) -> tuple[str, dict[str, Any]]:
    """C-STREAM: `text, _, last = body.rpartition("\\n")`."""
    streamed, _, last = text.rpartition("\n")
    final: dict[str, Any] = json.loads(last)
    return streamed, final


# The conversation of the seed bug report, in the (wrong) order its client sent it.
FAILED_ID = "msg_1755009345281_o2lvrl3ej"
RESENT_ID = "msg_1755009408209_56vecnout"
QUESTION = "what is amazon bedrock?"


def seed_history() -> list[dict[str, Any]]:
    return [
        user_msg("msg_1755009248861_y1k1o9hyk", "List some LLM providers", 8.861),
        user_msg("msg_1755009298667_s3mp33zjc", "alternatives to OpenRouter?", 58.667),
        assistant_msg(
            "msg_1755009254314_zh2xa9tuu",
            "Here are some LLM providers",
            14.314,
            "msg_1755009248861_y1k1o9hyk",
        ),
        user_msg(FAILED_ID, QUESTION, 105.281, error=True, error_message="rate-limited"),
        assistant_msg(
            "msg_1755009304864_gm11ezryb",
            "Alternatives to OpenRouter include",
            64.864,
            "msg_1755009298667_s3mp33zjc",
        ),
        user_msg(RESENT_ID, QUESTION, 168.209, originalModel="google/gemini-2.5-flash-lite"),
    ]
