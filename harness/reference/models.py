"""Request bodies: reading, JSON parsing and strict validation (C-ERR-3, C-CHAT-1, C-MSG-1).

Validation is strict on purpose: `true` is not an integer, `"5"` is not 5,
and a string Postgres cannot store (NUL, lone surrogates) is refused here
with a 400 that names the field, before any SQL runs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Request
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
)

from harness.reference.errors import ApiError
from harness.reference.timestamps import parse_timestamp

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_BATCH = 100
MAX_CHAT_MESSAGE_CHARS = 20_000
MAX_TITLE_CHARS = 255
# Ids are primary keys in btree indexes, whose entries must stay under ~2700
# bytes; 512 characters of up to 4 UTF-8 bytes each stays below that.
MAX_ID_CHARS = 512
INT31_MAX = 2**31 - 1


def _storable(value: str) -> str:
    """Postgres `text` cannot hold NUL, and UTF-8 cannot encode lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain lone surrogates") from None
    return value


def _timestamp(value: object) -> datetime:
    return parse_timestamp(value)


Text = Annotated[str, AfterValidator(_storable)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(_storable)]
Count = Annotated[int, Field(ge=0, le=INT31_MAX)]
Timestamp = Annotated[datetime, PlainValidator(_timestamp)]
Role = Literal["user", "assistant", "system"]


class _Strict(BaseModel):
    # Unknown fields are ignored (C-MSG, C-CHAT request shapes).
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ChatMessageIn(_Strict):
    """A ChatMessage as the client sends it (section 5). `null` counts as absent."""

    id: Id
    role: Role
    content: Text
    timestamp: Timestamp
    model: Text | None = None
    originalModel: Text | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    total_tokens: Count | None = None
    user_message_id: (
        Annotated[str, Field(max_length=MAX_ID_CHARS), AfterValidator(_storable)] | None
    ) = None
    contentType: Literal["text", "markdown"] | None = None
    elapsed_ms: Count | None = None
    completion_id: Text | None = None
    error: bool | None = None
    error_message: Text | None = None

    @property
    def failed(self) -> bool:
        return self.error is True


class ChatRequest(_Strict):
    """Body of POST /api/chat and /api/chat/stream (section 4)."""

    message: Text
    messages: list[ChatMessageIn] | None = None
    model: Text
    current_message_id: Text | None = None
    sessionId: Text | None = None


class StoreMessagesRequest(_Strict):
    """Body of POST /api/chat/messages (section 5)."""

    message: ChatMessageIn | None = None
    messages: list[ChatMessageIn] | None = None
    sessionId: Id
    sessionTitle: Text | None = None


class CreateSessionRequest(_Strict):
    id: Id
    title: Text | None = None


class RenameSessionRequest(_Strict):
    id: Id
    title: Text


M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request) -> Any:
    """The request body as JSON; 413 over 10 MiB, 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    # Read incrementally so a body without (or lying about) Content-Length
    # cannot make us buffer more than the limit.
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError("bad_request", "Request body is empty; expected a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, invalid UTF-8 and over-long integers;
        # RecursionError covers absurdly deep nesting.
        raise ApiError(
            "bad_request", "Malformed JSON body", details=_short(str(exc) or type(exc).__name__)
        ) from None


def validate(model: type[M], data: Any) -> M:
    """Validate parsed JSON against `model`; the 400 names the first bad field."""
    if not isinstance(data, dict):
        raise ApiError(
            "bad_request",
            f"Expected a JSON object but got {_json_type(data)}",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        messages = [f"{field_path(err['loc'])}: {_clean(err['msg'])}" for err in errors]
        raise ApiError(
            "bad_request",
            f"Invalid field {messages[0]}",
            details="; ".join(messages[:20]),
        ) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """`("messages", 0, "id")` → `messages[0].id`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def check_batch_size(data: Any) -> None:
    """More than 100 messages is 413 (C-MSG-1), checked before item validation."""
    if isinstance(data, dict):
        items = data.get("messages")
        if isinstance(items, list) and len(items) > MAX_BATCH:
            raise ApiError(
                "payload_too_large",
                f"Too many messages: {len(items)} (at most {MAX_BATCH} per request)",
            )


def _too_large() -> ApiError:
    return ApiError(
        "payload_too_large", f"Request body is larger than {MAX_BODY_BYTES} bytes (10 MiB)"
    )


def _clean(msg: str) -> str:
    # Pydantic prefixes errors raised by our validators with "Value error, ".
    return msg.removeprefix("Value error, ")


def _json_type(data: Any) -> str:
    if isinstance(data, list):
        return "an array"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    return "null" if data is None else type(data).__name__


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
