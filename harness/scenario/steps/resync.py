"""``resync``: post the client's last sync again (C-MSG-2); and the sync every chat makes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import ScenarioError
from harness.scenario.frontend import Sync
from harness.scenario.model import ResyncStep
from harness.scenario.steps.kind import StepKind

if TYPE_CHECKING:
    from harness.result import Exchange
    from harness.scenario.view import StepRun


async def sync(run: StepRun, index: int, actor: str, body: dict[str, Any]) -> Exchange:
    """Store messages as the front end does (``POST /api/chat/messages``), and judge it."""
    client = run.client
    stored_before = {m.get("id") for s in client.syncs if s.accepted for m in s.messages()}
    ex = await run.send(index, actor, "POST", "/api/chat/messages", body=body, purpose="sync")
    record = Sync(step=index, actor=actor, body=body, status=ex.status)
    client.syncs.append(record)
    client.last_batch = record
    run.judge_sync(index, record, ex, stored_before)
    return ex


def hold(run: StepRun, index: int, actor: str, body: dict[str, Any]) -> None:
    """A sync the client holds back (``sync: false``): the next ``resync`` posts it."""
    run.client.last_batch = Sync(step=index, actor=actor, body=body, status=0)


async def resync(run: StepRun, index: int, step: ResyncStep) -> None:
    """Post the client's last batch (again: or, held back, for the first time)."""
    last = run.client.last_batch
    if last is None:
        raise ScenarioError("resync needs an earlier sync", location=run.scenario.location(index),
                            key=f"steps[{index}]", hint="put a chat step before it")
    ex = await sync(run, index, last.actor, last.body)
    if step.expect is not None:
        run.expect(index, ex, step.expect, default=None)


KINDS = (StepKind("resync", ResyncStep, resync, title=lambda step: "resync", parallel=True),)
