"""Session routes (C-SES-1..4) and their ownership rules (C-AUTH-2)."""

from __future__ import annotations

from typing import Any

import pytest
from refkit import BOB, Api, error_of, user_msg

pytestmark = pytest.mark.anyio


async def create(api: Api, body: dict[str, Any], **kwargs: Any) -> Any:
    return await api.request("POST", "/api/chat/sessions", json=body, **kwargs)


async def test_create_then_again_then_foreign(api: Api) -> None:
    first = await create(api, {"id": "s1", "title": "Mine"})
    assert first.status_code == 201
    body = first.json()
    assert body["success"] is True
    session = body["session"]
    assert session["id"] == "s1" and session["title"] == "Mine"
    assert session["message_count"] == 0 and session["total_tokens"] == 0
    assert session["last_model"] is None and session["last_message_timestamp"] is None
    assert set(session) == {
        "id",
        "title",
        "created_at",
        "updated_at",
        "message_count",
        "total_tokens",
        "last_model",
        "last_message_preview",
        "last_message_timestamp",
    }
    again = await create(api, {"id": "s1", "title": "Other"})
    assert again.status_code == 200
    assert again.json()["session"] == session
    error_of(await create(api, {"id": "s1"}, user=BOB), 409, "conflict")


async def test_create_defaults_and_limits(api: Api) -> None:
    assert (await create(api, {"id": "s1"})).json()["session"]["title"] == "New Chat"
    assert (await create(api, {"id": "s2", "title": " "})).json()["session"]["title"] == "New Chat"
    error_of(await create(api, {"id": "s3", "title": "t" * 256}), 400, "bad_request")
    error_of(await create(api, {"title": "x"}), 400, "bad_request")


async def test_list_is_own_newest_first(api: Api) -> None:
    for session_id in ["a", "b", "c"]:
        await create(api, {"id": session_id})
    await create(api, {"id": "bobs"}, user=BOB)
    assert (await api.store("a", user_msg("m1", "hi", 0))).status_code == 201
    response = await api.request("GET", "/api/chat/sessions")
    body = response.json()
    assert [s["id"] for s in body["sessions"]] == ["a", "c", "b"]
    assert body["count"] == 3


async def test_get_session(api: Api) -> None:
    await create(api, {"id": "s1", "title": "T"})
    assert (await api.session("s1")).json()["session"]["title"] == "T"
    error_of(await api.session("s1", user=BOB), 404, "not_found")
    error_of(await api.session("nope"), 404, "not_found")
    error_of(await api.request("GET", "/api/chat/session"), 400, "bad_request")


async def test_rename(api: Api) -> None:
    created = (await create(api, {"id": "s1"})).json()["session"]
    response = await api.request("POST", "/api/chat/session", json={"id": "s1", "title": "New"})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["session"]["title"] == "New"
    assert body["session"]["updated_at"] >= created["updated_at"]
    for bad in [
        {"id": "s1"},
        {"id": "s1", "title": "  "},
        {"id": "s1", "title": "t" * 256},
        {"id": "s1", "title": 5},
    ]:
        error_of(await api.request("POST", "/api/chat/session", json=bad), 400, "bad_request")
    foreign = await api.request(
        "POST", "/api/chat/session", json={"id": "s1", "title": "X"}, user=BOB
    )
    error_of(foreign, 404, "not_found")
    assert (await api.session("s1")).json()["session"]["title"] == "New"


async def test_delete(api: Api) -> None:
    assert (await api.store("s1", user_msg("m1", "hi", 0))).status_code == 201
    error_of(
        await api.request("DELETE", "/api/chat/sessions", params={"id": "s1"}, user=BOB),
        404,
        "not_found",
    )
    assert len(api.rows("SELECT id FROM chat_messages")) == 1
    response = await api.request("DELETE", "/api/chat/sessions", params={"id": "s1"})
    assert response.status_code == 200 and response.json() == {"success": True}
    assert api.rows("SELECT id FROM chat_messages") == []
    error_of(
        await api.request("DELETE", "/api/chat/sessions", params={"id": "s1"}), 404, "not_found"
    )
    error_of(await api.request("DELETE", "/api/chat/sessions"), 400, "bad_request")
