"""Idempotent sync (C-MSG-2): every accepted sync again, then in reverse order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.checks.conversation import Snapshot, owners, stored
from harness.contract.oracle import item_fields
from harness.scenario.model import ParallelStep

if TYPE_CHECKING:
    from harness.scenario.view import RunView

# What must not move whatever order the batches come in: the last write of a
# retried message may legitimately differ in its error flag and tokens.
IDENTITY = ("id", "role", "content", "timestamp", "user_message_id")


async def _read_all(run: RunView, state: Snapshot) -> dict[str, list[dict[str, Any]] | None]:
    return {
        session: await stored(run, state, session, actor, check="idempotent", fresh=True)
        for session, actor in owners(run).items()
    }


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
        for sync in order:
            ex = await run.send(None, sync.actor, "POST", "/api/chat/messages",
                                body=sync.body, purpose="replay")
            if not ex.ok:
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
