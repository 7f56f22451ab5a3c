"""POST /api/chat/stream: the completion as plain text, then one metadata line (C-STREAM-1..3).

Body: the text as the provider streams it, then "\\n", then either
`{"__FINAL_METADATA__": {…C-CHAT-4 data…}}` or, when the provider fails after
the first token, `{"__STREAM_ERROR__": {"code", "error", "retryAfter"?}}`.
Failures before the first token are ordinary JSON errors (C-STREAM-2), which
is why the first token is awaited before the response starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from harness.reference.chat import completion_data, prepare
from harness.reference.conversation import Trigger
from harness.reference.errors import ApiError
from harness.reference.provider import (
    MAX_RETRIES,
    Completion,
    UpstreamClient,
    bad_gateway,
    error_message_of,
    gateway_timeout,
    parse_completion,
    provider_error,
    usage_counts,
)
from harness.reference.timestamps import now_iso

log = logging.getLogger("harness.reference")
router = APIRouter()

FINAL_MARKER = "__FINAL_METADATA__"
ERROR_MARKER = "__STREAM_ERROR__"
_DONE = object()


class StreamFailure(Exception):
    """The provider reported an error inside the stream; `status` is its `error.code`."""

    def __init__(self, status: int | None, message: str | None) -> None:
        super().__init__(message or "stream error")
        self.status = status
        self.message = message


@dataclass
class StreamState:
    """What the chunks said besides text: ids, usage, how the stream ended."""

    id: str | None = None
    model: str | None = None
    usage: tuple[int, int, int] = (0, 0, 0)
    finish_reason: str | None = None
    done: bool = False  # `data: [DONE]` was seen
    pending: list[str] = field(default_factory=list)  # text known before reading more

    @property
    def complete(self) -> bool:
        """C-STREAM-3: ended properly, by [DONE] or by a finish_reason other than "error"."""
        return self.done or self.finish_reason not in (None, "error")


def _status_of(error: Any) -> int | None:
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code)
    return None


def utf8_safe(text: str) -> str:
    """Lone surrogates (legal in JSON) become U+FFFD so the text can be sent as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def read_chunk(chunk: Any, state: StreamState) -> str:
    """Record one SSE chunk in `state` and return its text ("" if none)."""
    if not isinstance(chunk, dict):
        raise StreamFailure(None, "The provider sent a malformed stream chunk.")
    if chunk.get("error") is not None:
        raise StreamFailure(_status_of(chunk["error"]), error_message_of(chunk))
    if isinstance(chunk.get("id"), str):
        state.id = chunk["id"]
    if isinstance(chunk.get("model"), str) and chunk["model"]:
        state.model = chunk["model"]
    if isinstance(chunk.get("usage"), dict):
        state.usage = usage_counts(chunk["usage"])
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    if isinstance(choice.get("finish_reason"), str):
        state.finish_reason = choice["finish_reason"]
        if state.finish_reason == "error":
            raise StreamFailure(None, "The provider ended the stream with an error.")
    return utf8_safe(content) if isinstance(content, str) else ""


async def sse_chunks(response: httpx.Response) -> AsyncIterator[Any]:
    """Parsed `data:` payloads; `_DONE` for `[DONE]`. Comments (`: OPENROUTER PROCESSING`) skipped.

    Each data line is one chunk: OpenRouter never splits a chunk over lines, and
    a mock that omits the blank separator lines still parses.
    """
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            yield _DONE
            return
        try:
            yield json.loads(data)
        except ValueError:
            raise StreamFailure(None, "The provider sent a malformed stream chunk.") from None


class Upstream:
    """An open provider stream, read token by token."""

    def __init__(self, response: httpx.Response, state: StreamState | None = None) -> None:
        self.response = response
        self.state = state or StreamState()
        self._chunks = sse_chunks(response)

    async def next_text(self) -> str | None:
        """The next non-empty text piece, or None when the stream is over."""
        if self.state.pending:
            return self.state.pending.pop(0)
        if self.state.done:
            return None
        async for chunk in self._chunks:
            if chunk is _DONE:
                self.state.done = True
                return None
            text = read_chunk(chunk, self.state)
            if text:
                return text
        return None

    async def first_text(self) -> str | None:
        """Text up to the first non-blank piece; None if the answer is empty or blank."""
        buffered = ""
        while (piece := await self.next_text()) is not None:
            buffered += piece
            if buffered.strip():
                return buffered
        return None

    async def aclose(self) -> None:
        await self.response.aclose()


async def _error_body(response: httpx.Response, timeout_s: float) -> Any:
    try:
        async with asyncio.timeout(timeout_s):
            await response.aread()
        return response.json()
    except (TimeoutError, httpx.HTTPError, ValueError, UnicodeDecodeError, OSError):
        return None


async def open_stream(
    provider: UpstreamClient, model: str, messages: list[dict[str, str]]
) -> tuple[Upstream, str]:
    """Start the provider's stream and wait for its first token (C-STREAM-2).

    Retries like C-CHAT-3 while nothing has been sent to the client; raises the
    C-CHAT-5 ApiError otherwise.
    """
    payload, headers = provider.request({"model": model, "messages": messages, "stream": True})
    last_failure = bad_gateway("The provider could not be reached.")
    for attempt in range(1 + MAX_RETRIES):
        await provider.before_attempt(attempt)
        request = provider.http.build_request(
            "POST", provider.url, json=payload, headers=headers
        )
        try:
            async with asyncio.timeout(provider.timeout_s):
                response = await provider.http.send(request, stream=True)
        except (TimeoutError, httpx.TimeoutException):
            raise gateway_timeout(provider.timeout_ms) from None
        except (httpx.RequestError, OSError) as exc:
            last_failure = bad_gateway(f"Connection to the provider failed: {type(exc).__name__}")
            continue
        keep_open = False
        try:
            await provider.after_answer()
            status = response.status_code
            if not 200 <= status <= 299:
                body = await _error_body(response, provider.timeout_s)
                failure = provider.error_for(response, model, body)
                if provider.should_retry(status):
                    last_failure = failure
                    continue
                raise failure
            upstream = await _upstream_for(response, provider, model)
            try:
                async with asyncio.timeout(provider.timeout_s):
                    first = await upstream.first_text()
            except TimeoutError:
                raise gateway_timeout(provider.timeout_ms) from None
            except StreamFailure as failure:
                raise _mapped(provider, response, model, failure) from None
            except (httpx.RequestError, OSError) as exc:
                last_failure = bad_gateway(f"The provider's stream broke: {type(exc).__name__}")
                continue
            if first is None:
                raise bad_gateway("The provider's answer is empty.")
            keep_open = True
            return upstream, first
        finally:
            if not keep_open:
                await response.aclose()
    raise last_failure


async def _upstream_for(response: httpx.Response, provider: UpstreamClient, model: str) -> Upstream:
    """A provider that answered plain JSON despite `stream: true` is one big token."""
    if "json" not in response.headers.get("content-type", ""):
        return Upstream(response)
    body = await _error_body(response, provider.timeout_s)
    if body is None:
        raise bad_gateway("The provider's answer is not valid JSON.")
    completion = parse_completion(body, model)
    state = StreamState(
        id=completion.id,
        model=completion.model,
        usage=(completion.prompt_tokens, completion.completion_tokens, completion.total_tokens),
        done=True,
        pending=[utf8_safe(completion.content)],
    )
    return Upstream(response, state)


def _mapped(
    provider: UpstreamClient, response: httpx.Response, model: str, failure: StreamFailure
) -> ApiError:
    """An error chunk's `error.code`, mapped as if it were the HTTP status (C-STREAM-2/3)."""
    if failure.status is None:
        return bad_gateway(failure.message or "The provider's stream failed.")
    return provider_error(
        failure.status,
        model=model,
        message=failure.message,
        retry_after_header=response.headers.get("retry-after"),
        mapper=provider.mapper,
        retry_after=provider.retry_after,
    )


def _line(payload: dict[str, Any]) -> bytes:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        return ("\n" + text).encode("utf-8")
    except UnicodeEncodeError:
        return ("\n" + json.dumps(payload, separators=(",", ":"))).encode("ascii")


def error_line(error: ApiError) -> bytes:
    body: dict[str, Any] = {"code": error.code, "error": error.error}
    if error.retry_after is not None:
        body["retryAfter"] = error.retry_after
    return _line({ERROR_MARKER: body})


async def stream_body(
    upstream: Upstream,
    first: str,
    *,
    provider: UpstreamClient,
    model: str,
    trigger: Trigger,
    started: float,
    shown: Callable[[str], str],
) -> AsyncIterator[bytes]:
    """The response body: tokens as they come, then the final line (C-STREAM-1, C-STREAM-3)."""
    parts = [first]
    try:
        yield shown(first).encode("utf-8")
        while True:
            try:
                # A gap between tokens, not between lines: comments and
                # usage-only chunks do not reset the clock.
                async with asyncio.timeout(provider.timeout_s):
                    piece = await upstream.next_text()
            except TimeoutError:
                yield error_line(gateway_timeout(provider.timeout_ms))
                return
            except StreamFailure as failure:
                yield error_line(_mapped(provider, upstream.response, model, failure))
                return
            except (httpx.RequestError, OSError) as exc:
                yield error_line(bad_gateway(f"The provider's stream broke: {type(exc).__name__}"))
                return
            if piece is None:
                break
            parts.append(piece)
            yield shown(piece).encode("utf-8")
        if not upstream.state.complete:
            yield error_line(bad_gateway("The provider's stream ended without finishing."))
            return
        state = upstream.state
        completion = Completion(
            content="".join(parts),
            prompt_tokens=state.usage[0],
            completion_tokens=state.usage[1],
            total_tokens=state.usage[2],
            id=state.id,
            model=state.model or model,
        )
        yield _line({FINAL_MARKER: completion_data(completion, trigger, started, now_iso())})
    except Exception:
        # Headers are sent: the only way left to report is the error line.
        log.exception("stream failed")
        yield error_line(bad_gateway("The stream failed."))
    finally:
        await upstream.aclose()


@router.post("/api/chat/stream")
async def chat_stream(request: Request) -> StreamingResponse:
    prepared = await prepare(request)
    upstream, first = await open_stream(prepared.rt.provider, prepared.body.model, prepared.history)
    return StreamingResponse(
        stream_body(
            upstream,
            first,
            provider=prepared.rt.provider,
            model=prepared.body.model,
            trigger=prepared.trigger,
            started=prepared.started,
            shown=prepared.rt.strategies.stream_text,
        ),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
