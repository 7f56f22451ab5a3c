"""POST and GET /api/chat/messages: storing and reading a conversation (C-MSG-1..10)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from harness.reference import store
from harness.reference.auth import authenticate
from harness.reference.conversation import chronological
from harness.reference.errors import ApiError, ApiJSONResponse, quoted
from harness.reference.models import (
    MAX_TITLE_CHARS,
    ChatMessageIn,
    StoreMessagesRequest,
    check_batch_size,
    read_json,
    validate,
)
from harness.reference.runtime import Runtime, runtime
from harness.reference.timestamps import parse_timestamp

router = APIRouter()

DEFAULT_TITLE = "New Chat"
TITLE_FROM_MESSAGE_CHARS = 50


def session_not_found(session_id: str) -> ApiError:
    # The same answer for a foreign session as for a missing one (C-AUTH-2).
    return ApiError("not_found", f"Session {quoted(session_id)} not found")


def explicit_title(title: str | None) -> str | None:
    """A usable sessionTitle, or None when absent or blank (C-MSG-6)."""
    if title is None or not title.strip():
        return None
    if len(title) > MAX_TITLE_CHARS:
        raise ApiError(
            "bad_request",
            f"Invalid field sessionTitle: at most {MAX_TITLE_CHARS} characters, got {len(title)}",
        )
    return title


def title_from_batch(batch: list[ChatMessageIn]) -> str:
    """The first user message of the batch (timestamp, then position; failed ones count)."""
    for i in chronological(batch):
        if batch[i].role == "user":
            content = batch[i].content
            if len(content) > TITLE_FROM_MESSAGE_CHARS:
                return content[:TITLE_FROM_MESSAGE_CHARS] + "..."
            return content
    return DEFAULT_TITLE


def storage_row(
    message: ChatMessageIn, session_id: str, stored_timestamp: Callable[[datetime], datetime]
) -> dict[str, Any]:
    """The chat_messages row for a message (C-MSG-4, C-MSG-5)."""
    failed = message.failed
    return {
        "id": message.id,
        "session_id": session_id,
        "role": message.role,
        "content": message.content,
        # user messages keep the client's originalModel in `model` (C-MSG-9).
        "model": message.originalModel if message.role == "user" else message.model,
        "input_tokens": message.input_tokens or 0,
        "output_tokens": message.output_tokens or 0,
        "total_tokens": message.total_tokens or 0,
        "user_message_id": message.user_message_id,
        "content_type": message.contentType or "text",
        "elapsed_ms": message.elapsed_ms or 0,
        "completion_id": message.completion_id,
        "message_timestamp": stored_timestamp(message.timestamp),
        # error ⇔ error_message IS NOT NULL.
        "error_message": (message.error_message or "Message failed") if failed else None,
    }


async def check_pairing(conn: store.Conn, session_id: str, batch: list[ChatMessageIn]) -> None:
    """C-MSG-10: an assistant's user_message_id must name a user message of this session.

    That message may be stored already or come in the same batch; the batch's
    own roles win over stored ones, since the batch overwrites those rows.
    """
    role_after_batch = {message.id: message.role for message in batch}
    wanted = {
        message.user_message_id
        for message in batch
        if message.role == "assistant" and message.user_message_id
    }
    unresolved = sorted(ref for ref in wanted if ref not in role_after_batch)
    stored_users = await store.user_message_ids(conn, session_id, unresolved)
    missing = sorted(
        ref
        for ref in wanted
        if role_after_batch.get(ref, "user" if ref in stored_users else None) != "user"
    )
    if missing:
        raise ApiError(
            "unprocessable_entity",
            f"user_message_id {quoted(missing[0])} names no user message of session "
            f"{quoted(session_id)}",
            details="Unpaired user_message_id: " + ", ".join(map(quoted, missing[:20])),
        )


async def prepare_session(
    conn: store.Conn,
    rt: Runtime,
    user_id: uuid.UUID,
    session_id: str,
    title: str | None,
    batch: list[ChatMessageIn],
) -> None:
    """Lock the session, create or rename it (C-MSG-6), refuse foreign ones, check pairing."""
    await rt.strategies.lock_session(conn, session_id)
    session = await store.find_session(conn, session_id)
    if session is None:
        await store.insert_session(conn, session_id, user_id, title or title_from_batch(batch))
    elif not rt.strategies.can_write_session(session, user_id):
        raise session_not_found(session_id)
    elif title is not None and title != session["title"]:
        await store.rename_session(conn, session_id, title)
    await check_pairing(conn, session_id, batch)


def conflict(message_id: str) -> ApiError:
    return ApiError(
        "conflict",
        f"Message id {quoted(message_id)} is already stored in another session",
        details="Nothing of the batch was written.",
    )


async def write_rows(
    conn: store.Conn, rt: Runtime, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    stored = []
    for row in rows:
        written = await rt.strategies.write_message(conn, row)
        if written is None:
            raise conflict(row["id"])
        stored.append(written)
    return stored


async def store_batch(
    rt: Runtime,
    user_id: uuid.UUID,
    session_id: str,
    title: str | None,
    batch: list[ChatMessageIn],
    rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """C-MSG-3: the whole batch in one transaction, stats included (C-MSG-7)."""

    async def work(conn: store.Conn) -> list[dict[str, Any]]:
        await prepare_session(conn, rt, user_id, session_id, title, batch)
        stored = await write_rows(conn, rt, rows)
        await rt.strategies.refresh_stats(conn, session_id, stored)
        return stored

    return await store.in_transaction(rt.pool, work)


async def store_each(
    rt: Runtime,
    user_id: uuid.UUID,
    session_id: str,
    title: str | None,
    batch: list[ChatMessageIn],
    rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Mutant `batch-not-atomic`: one transaction per message, so a refusal leaves a prefix."""

    async def prepare(conn: store.Conn) -> None:
        await prepare_session(conn, rt, user_id, session_id, title, batch)

    await store.in_transaction(rt.pool, prepare)
    stored: list[dict[str, Any]] = []
    for row in rows:

        async def one(conn: store.Conn, row: dict[str, Any] = row) -> list[dict[str, Any]]:
            await store.lock_session(conn, session_id)
            written = await write_rows(conn, rt, [row])
            await rt.strategies.refresh_stats(conn, session_id, written)
            return written

        stored.extend(await store.in_transaction(rt.pool, one))
    return stored


@router.post("/api/chat/messages")
async def post_messages(request: Request) -> JSONResponse:
    user_id = authenticate(request)
    rt = runtime(request)
    data = await read_json(request)
    check_batch_size(data)
    body = validate(StoreMessagesRequest, data)
    if (body.message is None) == (body.messages is None):
        raise ApiError(
            "bad_request", "Send exactly one of 'message' and 'messages'", details="field: message"
        )
    batch = [body.message] if body.message is not None else list(body.messages or [])
    if not batch:
        raise ApiError("bad_request", "Invalid field messages: must hold 1 to 100 messages")
    title = explicit_title(body.sessionTitle)
    rows = [storage_row(m, body.sessionId, rt.strategies.stored_timestamp) for m in batch]
    write = store_batch if rt.strategies.atomic_batches else store_each
    stored = await write(rt, user_id, body.sessionId, title, batch, rows)
    items = [rt.strategies.message_item(row) for row in stored]
    return ApiJSONResponse({"messages": items, "count": len(items), "success": True}, 201)


def required_query(request: Request, name: str) -> str:
    """A required, non-blank query parameter that Postgres can compare (no NUL)."""
    value = request.query_params.get(name)
    if value is None or not value.strip():
        raise ApiError("bad_request", f"Missing query parameter '{name}'")
    if "\x00" in value:
        raise ApiError("bad_request", f"Invalid query parameter '{name}': contains NUL")
    return value


@router.get("/api/chat/messages")
async def get_messages(request: Request) -> JSONResponse:
    user_id = authenticate(request)
    rt = runtime(request)
    session_id = required_query(request, "session_id")
    raw_since = request.query_params.get("since_ts")
    since: datetime | None = None
    if raw_since is not None:
        try:
            since = parse_timestamp(raw_since)
        except ValueError as exc:
            raise ApiError("bad_request", f"Invalid query parameter 'since_ts': {exc}") from None

    async def work(conn: store.Conn) -> list[dict[str, Any]]:
        session = await store.find_session(conn, session_id)
        if session is None or not rt.strategies.can_read_session(session, user_id):
            raise session_not_found(session_id)
        return await store.list_messages(
            conn, session_id, since, rt.strategies.message_order, rt.strategies.since_filter
        )

    rows = await store.in_transaction(rt.pool, work)
    items = [rt.strategies.message_item(row) for row in rows]
    body: dict[str, Any] = {"messages": items, "count": len(items)}
    if since is not None:
        body["up_to_date"] = not items
    return ApiJSONResponse(body)
