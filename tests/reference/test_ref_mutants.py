"""Each mutant misbehaves exactly as its description says (and the registry is sound)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from refkit import (
    ALICE,
    BOB,
    FAILED_ID,
    QUESTION,
    FakeProvider,
    assistant_msg,
    backend,
    completion,
    error_of,
    failure,
    seed_history,
    split_stream,
    sse,
    token_chunk,
    ts,
    user_msg,
)

from harness.reference import MUTANTS, Settings
from harness.reference.mutants import Strategies, build_strategies

pytestmark = pytest.mark.anyio


def test_registry_and_strategies_agree() -> None:
    assert build_strategies() == Strategies()
    for name in MUTANTS:
        assert build_strategies([name]) != Strategies(), name
    with pytest.raises(ValueError, match="no-such-mutant"):
        build_strategies(["no-such-mutant"])


def test_settings_reject_unknown_mutants() -> None:
    with pytest.raises(ValueError, match="Hint"):
        Settings(
            database_url="postgresql://x", provider_base_url="http://p", mutants=frozenset({"typo"})
        )


async def test_request_id_first_match(db: str) -> None:
    async with backend(db, mutants={"request-id-first-match"}) as api:
        body = {"message": QUESTION, "messages": seed_history(), "model": "m"}
        response = await api.chat(body)
        assert response.json()["data"]["request_id"] == FAILED_ID


async def test_request_id_first_message(db: str) -> None:
    async with backend(db, mutants={"request-id-first-message"}) as api:
        body = {"message": QUESTION, "messages": seed_history(), "model": "m"}
        assert (await api.chat(body)).json()["data"]["request_id"] == seed_history()[0]["id"]


async def test_insert_not_upsert(db: str) -> None:
    async with backend(db, mutants={"insert-not-upsert"}) as api:
        failed = user_msg("u1", "q", 0, error=True)
        assert (await api.store("s1", failed)).status_code == 201
        error_of(
            await api.store("s1", failed, assistant_msg("a1", "r", 1, "u1")),
            500,
            "internal_server_error",
        )


async def test_retry_not_updated(db: str) -> None:
    async with backend(db, mutants={"retry-not-updated"}) as api:
        await api.store("s1", user_msg("u1", "q", 0, error=True))
        assert (await api.store("s1", user_msg("u1", "q", 0))).status_code == 201
        assert (await api.read_ok("s1"))[0]["error"] is True


async def test_server_timestamp(db: str) -> None:
    async with backend(db, mutants={"server-timestamp"}) as api:
        message = user_msg("u1", "q", 0)
        await api.store("s1", message)
        assert (await api.read_ok("s1"))[0]["timestamp"] != message["timestamp"]


async def test_order_by_storage(db: str) -> None:
    async with backend(db, mutants={"order-by-storage"}) as api:
        await api.store("s1", user_msg("late", "b", 10))
        await api.store("s1", user_msg("early", "a", 5))
        assert [m["id"] for m in await api.read_ok("s1")] == ["late", "early"]


async def test_batch_not_atomic(db: str) -> None:
    async with backend(db, mutants={"batch-not-atomic"}) as api:
        await api.store("bobs", user_msg("taken", "b", 0), user=BOB)
        error_of(
            await api.store("s1", user_msg("m1", "a", 1), user_msg("taken", "x", 2)),
            409,
            "conflict",
        )
        assert [m["id"] for m in await api.read_ok("s1")] == ["m1"]


async def test_context_keeps_failed(db: str) -> None:
    provider = FakeProvider()
    async with backend(db, provider, mutants={"context-keeps-failed"}) as api:
        messages = [user_msg("u1", "broken", 0, error=True), user_msg("u2", "hi", 1)]
        assert (await api.chat({"message": "hi", "messages": messages, "model": "m"})).is_success
        contents = [m["content"] for m in provider.bodies[0]["messages"]]
        assert contents == ["broken", "hi"]


async def test_rate_limit_as_502(db: str) -> None:
    provider = FakeProvider(failure(429, headers={"Retry-After": "5"}))
    async with backend(db, provider, mutants={"rate-limit-as-502"}) as api:
        body = error_of(await api.chat({"message": "hi", "model": "m"}), 502, "bad_gateway")
        assert "retryAfter" not in body


async def test_foreign_session_readable(db: str) -> None:
    async with backend(db, mutants={"foreign-session-readable"}) as api:
        await api.store("alices", user_msg("a1", "secret", 0))
        response = await api.read("alices", user=BOB)
        assert response.status_code == 200
        assert response.json()["messages"][0]["content"] == "secret"
        # Only reading leaks: writing into it is still refused.
        error_of(await api.store("alices", user_msg("b1", "x", 1), user=BOB), 404, "not_found")


async def test_since_ts_inclusive(db: str) -> None:
    async with backend(db, mutants={"since-ts-inclusive"}) as api:
        await api.store("s1", user_msg("u1", "q", 0), user_msg("u2", "r", 1))
        response = await api.read("s1", params={"since_ts": ts(1)})
        body = response.json()
        # The message AT since_ts comes back (the client holds it already).
        assert [m["id"] for m in body["messages"]] == ["u2"]
        assert body["up_to_date"] is False
        body = (await api.read("s1", params={"since_ts": ts(0)})).json()
        assert [m["id"] for m in body["messages"]] == ["u1", "u2"]


@pytest.mark.parametrize(
    ("status", "code"), [(429, "too_many_requests"), (503, "service_unavailable")]
)
async def test_retry_after_ignored(db: str, status: int, code: str) -> None:
    provider = FakeProvider(
        failure(status, headers={"Retry-After": "5"}), failure(status, headers={"Retry-After": "5"})
    )
    async with backend(db, provider, mutants={"retry-after-ignored"}) as api:
        body = {"message": "hi", "model": "m"}
        for path in ("/api/chat", "/api/chat/stream"):
            response = await api.request("POST", path, json=body)
            assert error_of(response, status, code)["retryAfter"] == 60
            assert response.headers["Retry-After"] == "60"
        # Only the number is wrong: still one call each, never retried.
        assert len(provider.requests) == 2


async def test_retries_client_errors(db: str) -> None:
    provider = FakeProvider(failure(429, headers={"Retry-After": "5"}), completion("later"))
    async with backend(db, provider, mutants={"retries-client-errors"}) as api:
        body = {"message": "hi", "model": "m"}
        response = await api.chat(body)
        assert response.status_code == 200, response.text
        assert len(provider.requests) == 2
        # Given up after two retries: the last failure's answer, after 3 calls.
        provider.script(failure(400), failure(400), failure(400))
        error_of(await api.chat(body), 400, "bad_request")
        assert len(provider.requests) == 5
        # The stream route retries the same way before its first token.
        provider.script(failure(402), sse(token_chunk("ok"), token_chunk(finish="stop")))
        response = await api.request("POST", "/api/chat/stream", json=body)
        assert response.status_code == 200
        assert split_stream(response.text)[0] == "ok"
        assert len(provider.requests) == 7


async def test_stats_not_updated_on_upsert(db: str) -> None:
    async with backend(db, mutants={"stats-not-updated-on-upsert"}) as api:
        await api.store("s1", user_msg("u1", "q", 0, error=True))
        before = (await api.session("s1")).json()["session"]
        assert before["message_count"] == 0
        # The retry that worked, same id: the row is updated ...
        assert (await api.store("s1", user_msg("u1", "q", 0))).status_code == 201
        assert (await api.read_ok("s1"))[0]["error"] is False
        # ... but message_count, preview and updated_at are not.
        assert (await api.session("s1")).json()["session"] == before
        # A store that inserts a row refreshes everything again.
        await api.store("s1", user_msg("u2", "more", 1))
        after = (await api.session("s1")).json()["session"]
        assert after["message_count"] == 2 and after["last_message_preview"] == "more"


async def test_foreign_session_writable(db: str) -> None:
    async with backend(db, mutants={"foreign-session-writable"}) as api:
        await api.store("alices", user_msg("a1", "secret", 0), title="Alice's")
        response = await api.store("alices", user_msg("b1", "from bob", 1), title="Bob's", user=BOB)
        assert response.status_code == 201, response.text
        rows = api.rows(
            "SELECT s.user_id, s.title, count(m.id) AS n FROM chat_sessions s "
            "JOIN chat_messages m ON m.session_id = s.id GROUP BY s.id"
        )
        # Still alice's session, but renamed by bob and holding bob's message.
        assert rows == [{"user_id": ALICE, "title": "Bob's", "n": 2}]
        # Only writing leaks: reading it is still refused.
        error_of(await api.read("alices", user=BOB), 404, "not_found")


async def test_framework_error_body(db: str) -> None:
    async with backend(db, mutants={"framework-error-body"}) as api:
        response = await api.request("GET", "/api/nope")
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
        response = await api.request("PUT", "/api/chat")
        assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})
        assert response.headers["x-request-id"]
        # The app's own errors keep the envelope.
        error_of(await api.read("nobody"), 404, "not_found")
        error_of(await api.chat({"message": "hi"}), 400, "bad_request")


async def test_pairing_off_by_one(db: str) -> None:
    async with backend(db, mutants={"pairing-off-by-one"}) as api:
        await api.store("s1", user_msg("u1", "first", 0), assistant_msg("a1", "one", 1, "u1"))
        await api.store("s1", user_msg("u2", "second", 2), assistant_msg("a2", "two", 3, "u2"))
        pairs = {m["id"]: m["user_message_id"] for m in await api.read_ok("s1")}
        assert pairs["a1"] == "u1"  # nothing before u1: kept
        assert pairs["a2"] == "u1"  # one back from what it named


async def test_provider_gets_metadata(db: str) -> None:
    provider = FakeProvider()
    async with backend(db, provider, mutants={"provider-gets-metadata"}) as api:
        messages = [user_msg("u1", "hi", 0)]
        assert (await api.chat({"message": "hi", "messages": messages, "model": "m"})).is_success
        (sent,) = provider.bodies[0]["messages"]
        assert sent["id"] == "u1" and sent["timestamp"] and sent["content"] == "hi"


async def test_elapsed_ms_float(db: str) -> None:
    async with backend(db, FakeProvider(), mutants={"elapsed-ms-float"}) as api:
        response = await api.chat({"message": "hi", "model": "m"})
        assert isinstance(response.json()["data"]["elapsed_ms"], float)


async def test_leaky_500(db: str) -> None:
    async with backend(db, mutants={"leaky-500"}) as api:
        message = user_msg("u1", "q", 0)
        assert (await api.store("s1", message)).status_code == 201
        body = error_of(await api.store("s1", message), 500, "internal_server_error")
        assert body["details"].startswith("psycopg.errors.UniqueViolation: duplicate key")


async def test_mutants_combine(db: str) -> None:
    names: Any = {"order-by-storage", "server-timestamp"}
    async with backend(db, mutants=names) as api:
        assert (await api.store("s1", user_msg("u1", "q", 0))).status_code == 201


async def test_unlocked_check_then_insert(db: str) -> None:
    """Correct one request at a time; two first posts of one new id at once: one 500."""
    async with backend(db, mutants={"unlocked-check-then-insert"}) as api:
        first = user_msg("u1", "q", 0)
        assert (await api.store("s1", first)).status_code == 201
        assert (await api.store("s1", first, assistant_msg("a1", "r", 1, "u1"))).status_code == 201
        assert [m["id"] for m in await api.read_ok("s1")] == ["u1", "a1"]
        new = user_msg("u2", "again", 2)
        answers = await asyncio.gather(api.store("s1", new), api.store("s1", new))
        assert sorted(r.status_code for r in answers) == [201, 500]
    async with backend(db) as api:  # the reference: both stored, one row
        new = user_msg("u3", "once more", 3)
        answers = await asyncio.gather(api.store("s1", new), api.store("s1", new))
        assert [r.status_code for r in answers] == [201, 201]
