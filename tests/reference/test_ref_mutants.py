"""Each mutant misbehaves exactly as its description says (and the registry is sound)."""

from __future__ import annotations

from typing import Any

import pytest
from refkit import (
    BOB,
    FAILED_ID,
    QUESTION,
    FakeProvider,
    assistant_msg,
    backend,
    error_of,
    failure,
    seed_history,
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


async def test_mutants_combine(db: str) -> None:
    names: Any = {"order-by-storage", "server-timestamp"}
    async with backend(db, mutants=names) as api:
        assert (await api.store("s1", user_msg("u1", "q", 0))).status_code == 201
