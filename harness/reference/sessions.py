"""Session routes (C-SES-1..4): list, create, read, rename, delete — the caller's own only."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from harness.reference import store
from harness.reference.auth import authenticate
from harness.reference.errors import ApiError, ApiJSONResponse, quoted
from harness.reference.messages import DEFAULT_TITLE, required_query, session_not_found
from harness.reference.models import (
    MAX_TITLE_CHARS,
    CreateSessionRequest,
    RenameSessionRequest,
    read_json,
    validate,
)
from harness.reference.runtime import runtime

router = APIRouter()


def _check_title_length(title: str, field: str = "title") -> str:
    if len(title) > MAX_TITLE_CHARS:
        raise ApiError(
            "bad_request",
            f"Invalid field {field}: at most {MAX_TITLE_CHARS} characters, got {len(title)}",
        )
    return title


async def _own_session(conn: store.Conn, session_id: str, user_id: uuid.UUID) -> store.Row:
    session = await store.find_session(conn, session_id)
    if session is None or session["user_id"] != user_id:
        raise session_not_found(session_id)
    return session


@router.get("/api/chat/sessions")
async def list_sessions(request: Request) -> JSONResponse:
    user_id = authenticate(request)
    rt = runtime(request)

    async def work(conn: store.Conn) -> list[store.Row]:
        return await store.list_sessions(conn, user_id)

    rows = await store.in_transaction(rt.pool, work)
    sessions = [rt.strategies.session_item(row) for row in rows]
    return ApiJSONResponse({"sessions": sessions, "count": len(sessions)})


@router.post("/api/chat/sessions")
async def create_session(request: Request) -> JSONResponse:
    """C-SES-2: 201 created; 200 with the caller's existing session unchanged; 409 if foreign."""
    user_id = authenticate(request)
    rt = runtime(request)
    body = validate(CreateSessionRequest, await read_json(request))
    title = body.title if body.title is not None and body.title.strip() else DEFAULT_TITLE
    _check_title_length(title)

    async def work(conn: store.Conn) -> tuple[store.Row, bool]:
        session = await rt.strategies.open_session(conn, body.id)
        if session is None:
            return await rt.strategies.create_session(conn, body.id, user_id, title), True
        if session["user_id"] != user_id:
            raise ApiError("conflict", f"Session id {quoted(body.id)} is already taken")
        return session, False

    session, created = await store.in_transaction(rt.pool, work)
    return ApiJSONResponse(
        {"session": rt.strategies.session_item(session), "success": True},
        201 if created else 200,
    )


@router.delete("/api/chat/sessions")
async def delete_session(request: Request) -> JSONResponse:
    user_id = authenticate(request)
    rt = runtime(request)
    session_id = required_query(request, "id")

    async def work(conn: store.Conn) -> None:
        await store.lock_session(conn, session_id)
        await _own_session(conn, session_id, user_id)
        await store.delete_session(conn, session_id)

    await store.in_transaction(rt.pool, work)
    return ApiJSONResponse({"success": True})


@router.get("/api/chat/session")
async def get_session(request: Request) -> JSONResponse:
    user_id = authenticate(request)
    rt = runtime(request)
    session_id = required_query(request, "id")

    async def work(conn: store.Conn) -> store.Row:
        return await _own_session(conn, session_id, user_id)

    session = await store.in_transaction(rt.pool, work)
    return ApiJSONResponse({"session": rt.strategies.session_item(session)})


@router.post("/api/chat/session")
async def rename_session(request: Request) -> JSONResponse:
    """C-SES-3: rename; the title is required, non-blank and at most 255 characters."""
    user_id = authenticate(request)
    rt = runtime(request)
    body = validate(RenameSessionRequest, await read_json(request))
    if not body.title.strip():
        raise ApiError("bad_request", "Invalid field title: must not be blank")
    title = _check_title_length(body.title)

    async def work(conn: store.Conn) -> store.Row:
        await store.lock_session(conn, body.id)
        await _own_session(conn, body.id, user_id)
        return await store.rename_session(conn, body.id, title)

    session = await store.in_transaction(rt.pool, work)
    return ApiJSONResponse({"session": rt.strategies.session_item(session), "success": True})
