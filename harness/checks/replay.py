"""Idempotent sync (C-MSG-2): every accepted sync again, then in reverse order."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from harness.checks.conversation import Snapshot, owners, stored
from harness.contract.oracle import item_fields
from harness.scenario.model import ParallelStep

if TYPE_CHECKING:
    from harness.result import Exchange
    from harness.scenario.frontend import Sync
    from harness.scenario.view import RunView

# What must not move whatever order the batches come in: the last write of a
# retried message may legitimately differ in its error flag and tokens.
IDENTITY = ("id", "role", "content", "timestamp", "user_message_id")


async def _read_all(run: RunView, state: Snapshot) -> dict[str, list[dict[str, Any]] | None]:
    sessions = owners(run)
    read = await asyncio.gather(*(stored(run, state, session, actor, check="idempotent",
                                         fresh=True) for session, actor in sessions.items()))
    return dict(zip(sessions, read, strict=True))


def _independent(syncs: list[Sync]) -> list[list[Sync]]:
    """``syncs`` in groups that may be replayed at once, each group in order: one group a
    session when no message id is in two sessions' syncs; else one group (in order)."""
    groups: dict[Any, list[Sync]] = {}
    seen: dict[Any, Any] = {}  # message id -> its session
    for sync in syncs:
        session = sync.body.get("sessionId")
        key = session if isinstance(session, str) else None
        groups.setdefault(key, []).append(sync)
        messages = sync.body.get("messages")
        for item in messages if isinstance(messages, list) else ():
            mid = item.get("id") if isinstance(item, dict) else None
            if isinstance(mid, str) and seen.setdefault(mid, key) != key:
                return [syncs]
    if None in groups:
        return [syncs]
    return list(groups.values())


async def _replay(run: RunView, group: list[Sync]) -> tuple[Sync, Exchange] | None:
    """Each sync of ``group`` again, in order; the first that is not accepted, if any."""
    for sync in group:
        ex = await run.send(None, sync.actor, "POST", "/api/chat/messages",
                            body=sync.body, purpose="replay")
        if not ex.ok:
            return sync, ex
    return None


def _fixed(items: list[dict[str, Any]] | None) -> list[Any] | None:
    """What C-MSG-9 fixes of each item: fields beyond it (an ``updated_at``) may move."""
    return None if items is None else [item_fields(i) for i in items]


def _identity(items: list[dict[str, Any]] | None) -> list[tuple[Any, ...]] | None:
    if items is None:
        return None
    return [tuple(i.get(k) for k in IDENTITY) for i in items]


async def check_idempotent(run: RunView, state: Snapshot) -> None:
    accepted = [s for s in run.client.syncs if s.accepted]
    if not accepted:
        return
    raced = any(isinstance(step, ParallelStep) for step in run.scenario.steps)
    # what the earlier checks read (``stored`` reads only what they did not)
    before = {s: await stored(run, state, s, actor, check="idempotent")
              for s, actor in owners(run).items()}
    for label, order in (("again", accepted), ("in reverse order", accepted[::-1])):
        # the sessions' replays at once (each session's in order): they share no message
        refused = [r for r in await asyncio.gather(
            *(_replay(run, group) for group in _independent(order))) if r is not None]
        if refused:
            position = {id(s): i for i, s in enumerate(order)}
            sync, ex = min(refused, key=lambda r: position[id(r[0])])  # the first, in order
            where = f"step {sync.step + 1}" if sync.step is not None else "a check"
            run.result.fail(
                "idempotent",
                f"replaying the accepted sync of {where} {label} got {ex.brief()}",
                expected="2xx",
                actual={"status": ex.status, "body": ex.response_body}, clause="C-MSG-2",
            )
            return
        after = await _read_all(run, state)
        for session, items in after.items():
            was = before.get(session)
            # concurrent syncs (a parallel step) are replayed in the order their answers
            # came, which need not be the order they were written in: where two carried
            # different versions of one message (a retry racing its failure), only what
            # every version shares is fixed
            same = (_fixed(items) == _fixed(was) if label == "again" and not raced
                    else _identity(items) == _identity(was))
            if not same:
                run.result.fail(
                    "idempotent",
                    f"session {session} reads differently after replaying every sync {label}",
                    expected=_identity(was), actual=_identity(items), clause="C-MSG-2",
                )
                return
