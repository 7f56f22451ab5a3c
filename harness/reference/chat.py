"""POST /api/chat: one completion for the client's conversation (C-CHAT-1..6).

Stores nothing (C-CHAT-6): the client stores its messages through
/api/chat/messages, pairing them by the `request_id` answered here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from harness.reference.auth import authenticate
from harness.reference.conversation import Trigger
from harness.reference.errors import ApiError, ApiJSONResponse
from harness.reference.models import MAX_CHAT_MESSAGE_CHARS, ChatRequest, read_json, validate
from harness.reference.provider import Completion
from harness.reference.runtime import Runtime, runtime
from harness.reference.timestamps import elapsed_ms, now_iso

router = APIRouter()

# Informative only (C-CHAT-4): headings, lists, quotes, fences, emphasis, links.
_MARKDOWN = re.compile(
    r"(^|\n)\s{0,3}(#{1,6}\s|[-*+]\s|\d+\.\s|>\s|```)|\*\*[^*\n]+\*\*|`[^`\n]+`|\[[^\]\n]+\]\([^)\n]+\)"
)


def content_type_of(text: str) -> str:
    return "markdown" if _MARKDOWN.search(text) else "text"


async def chat_request(request: Request) -> ChatRequest:
    """Read and check the body shared by /api/chat and /api/chat/stream (C-CHAT-1)."""
    body = validate(ChatRequest, await read_json(request))
    trimmed = body.message.strip()
    if not trimmed:
        raise ApiError("bad_request", "Invalid field message: must not be empty")
    if len(trimmed) > MAX_CHAT_MESSAGE_CHARS:
        raise ApiError(
            "payload_too_large",
            f"Invalid field message: at most {MAX_CHAT_MESSAGE_CHARS} characters "
            f"after trimming, got {len(trimmed)}",
        )
    if not body.model.strip():
        raise ApiError("bad_request", "Invalid field model: must not be empty")
    return body


@dataclass(frozen=True)
class Prepared:
    """A checked chat request, ready for the provider (both chat routes start so)."""

    started: float
    rt: Runtime
    body: ChatRequest
    trigger: Trigger  # the triggering message (C-CHAT-2)
    history: list[dict[str, str]]  # what the provider is sent (C-CHAT-3)


async def prepare(request: Request) -> Prepared:
    started = time.monotonic()
    authenticate(request)
    rt = runtime(request)
    body = await chat_request(request)
    trigger = rt.strategies.pick_trigger(body)
    return Prepared(started, rt, body, trigger, rt.strategies.provider_messages(body, trigger))


def completion_data(
    completion: Completion, trigger: Trigger, started: float, timestamp: str,
    elapsed: Callable[[float], Any] = elapsed_ms,
) -> dict[str, Any]:
    """The `data` object of C-CHAT-4 (also the __FINAL_METADATA__ of a stream)."""
    return {
        "response": completion.content,
        "usage": {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.total_tokens,
        },
        "request_id": trigger.request_id,
        "timestamp": timestamp,
        "elapsed_ms": elapsed(time.monotonic() - started),
        "contentType": content_type_of(completion.content),
        "id": completion.id,
        "model": completion.model,
    }


@router.post("/api/chat")
async def chat(request: Request) -> JSONResponse:
    prepared = await prepare(request)
    completion = await prepared.rt.provider.complete(prepared.body.model, prepared.history)
    timestamp = now_iso()
    return ApiJSONResponse({
        "data": completion_data(completion, prepared.trigger, prepared.started, timestamp,
                                prepared.rt.strategies.elapsed_ms),
        "timestamp": timestamp,
    })
