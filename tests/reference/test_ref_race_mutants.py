"""Each race mutant misbehaves as described under the interleaving it names, and only then.

The interleaving is forced, not hoped for: `races.window` (the pause between a
check and its act) is replaced by a gate that holds the first request there
while a second one runs to its end. The same two requests one after the other
are right on every race mutant.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from refkit import backend, error_of, user_msg

from harness.reference import races
from harness.reference.mutants import MUTANTS, RACE_MUTANTS

pytestmark = pytest.mark.anyio


class Gate:
    """The first request to reach the window waits there until `release`; others pass."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()
        self.calls = 0
        monkeypatch.setattr(races, "window", self._window)

    async def _window(self) -> None:
        self.calls += 1
        if self.calls == 1:
            self.reached.set()
            await self.opened.wait()

    def release(self) -> None:
        self.opened.set()


async def _held(gate: Gate, first: Any) -> asyncio.Task[Any]:
    """Start `first` and return once it waits in its window."""
    task = asyncio.ensure_future(first)
    await asyncio.wait_for(gate.reached.wait(), 10)
    return task


def test_race_mutants_are_registered() -> None:
    assert set(RACE_MUTANTS) <= MUTANTS.keys()
    assert all(MUTANTS[name].startswith("race: ") for name in RACE_MUTANTS)


async def test_check_then_insert(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    async with backend(db, mutants={"check-then-insert"}) as api:
        message = user_msg("u1", "q", 0)
        first = await _held(gate, api.store("s1", message))  # checked: u1 is not stored
        assert (await api.store("s1", message)).status_code == 201  # the other tab stores it
        gate.release()
        error_of(await first, 500, "internal_server_error")  # INSERT: duplicate key
        assert api.rows("SELECT count(*) AS n FROM chat_messages") == [{"n": 1}]


async def test_check_then_insert_one_at_a_time(db: str) -> None:
    async with backend(db, mutants={"check-then-insert"}) as api:
        failed, fixed = user_msg("u1", "q", 0, error=True), user_msg("u1", "q", 0)
        assert (await api.store("s1", failed, failed)).status_code == 201  # twice in a batch
        assert (await api.store("s1", fixed)).status_code == 201  # an update
        assert (await api.read_ok("s1"))[0]["error"] is False
        error_of(await api.store("s2", fixed), 409, "conflict")  # another session's id


async def test_stats_read_modify_write(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with backend(db, mutants={"stats-read-modify-write"}) as api:
        assert (await api.store("s1", user_msg("u0", "hello", 0))).status_code == 201
        gate = Gate(monkeypatch)
        first = await _held(gate, api.store("s1", user_msg("u1", "one", 1)))  # loaded: u0
        assert (await api.store("s1", user_msg("u2", "two", 2))).status_code == 201
        gate.release()
        assert (await first).status_code == 201
        assert len(await api.read_ok("s1")) == 3
        session = (await api.session("s1")).json()["session"]
        assert session["message_count"] == 2  # u2 lost from the stats
        assert session["last_message_preview"] == "one"  # not u2, the latest


async def test_stats_read_modify_write_one_at_a_time(db: str) -> None:
    async with backend(db, mutants={"stats-read-modify-write"}) as api:
        await api.store("s1", user_msg("u1", "q", 0, error=True))
        await api.store("s1", user_msg("u2", "later", 5), user_msg("u1", "q", 0))
        session = (await api.session("s1")).json()["session"]
        assert (session["message_count"], session["last_message_preview"]) == (2, "later")


async def test_session_select_then_insert(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    async with backend(db, mutants={"session-select-then-insert"}) as api:
        tab = {"json": {"id": "s1", "title": "t"}}
        first = await _held(gate, api.request("POST", "/api/chat/sessions", **tab))
        assert (await api.request("POST", "/api/chat/sessions", **tab)).status_code == 201
        gate.release()
        error_of(await first, 409, "conflict")  # to the session's own owner


async def test_session_select_then_insert_by_a_store(db: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    async with backend(db, mutants={"session-select-then-insert"}) as api:
        first = await _held(gate, api.store("s1", user_msg("u1", "one", 0)))
        assert (await api.store("s1", user_msg("u2", "two", 1))).status_code == 201
        gate.release()
        error_of(await first, 409, "conflict")
        assert [m["id"] for m in await api.read_ok("s1")] == ["u2"]  # u1 is lost


async def test_session_select_then_insert_one_at_a_time(db: str) -> None:
    async with backend(db, mutants={"session-select-then-insert"}) as api:
        tab = {"json": {"id": "s1", "title": "t"}}
        assert (await api.request("POST", "/api/chat/sessions", **tab)).status_code == 201
        assert (await api.request("POST", "/api/chat/sessions", **tab)).status_code == 200
        assert (await api.store("s1", user_msg("u1", "q", 0))).status_code == 201


async def test_stats_own_transaction(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    async with backend(db, mutants={"stats-own-transaction"}) as api:
        first = await _held(gate, api.store("s1", user_msg("u1", "one", 0)))  # rows committed
        assert len(await api.read_ok("s1")) == 1
        assert (await api.session("s1")).json()["session"]["message_count"] == 0  # in between
        gate.release()
        assert (await first).status_code == 201
        assert (await api.session("s1")).json()["session"]["message_count"] == 1


async def test_stats_own_transaction_lost_update(db: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Both stats transactions have read; the earlier writes, the later fails and is dropped."""
    async with backend(db, mutants={"stats-own-transaction"}) as api:
        assert (await api.store("s1", user_msg("u0", "zero", 0))).status_code == 201
        arrived: asyncio.Queue[asyncio.Event] = asyncio.Queue()

        async def hold() -> None:
            go = asyncio.Event()
            arrived.put_nowait(go)
            await go.wait()

        monkeypatch.setattr(races, "window", hold)
        first = asyncio.ensure_future(api.store("s1", user_msg("u1", "one", 1)))
        go_first = await asyncio.wait_for(arrived.get(), 10)  # read: u0, u1
        second = asyncio.ensure_future(api.store("s1", user_msg("u2", "two", 2)))
        go_second = await asyncio.wait_for(arrived.get(), 10)  # read: u0, u1, u2
        go_first.set()
        assert (await first).status_code == 201
        go_second.set()
        assert (await second).status_code == 201  # its stats failed, and were dropped
        assert len(await api.read_ok("s1")) == 3
        assert (await api.session("s1")).json()["session"]["message_count"] == 2  # for good
