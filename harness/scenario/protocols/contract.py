"""The ``contract`` protocol: the chat API of CONTRACT.md, as the seed's front end speaks it.

A turn is ``POST /api/chat`` (or ``/api/chat/stream``) with the client's whole
history; the client pairs the answer by ``request_id`` and stores both
messages itself with ``POST /api/chat/messages`` (the sync); ``resync`` posts
the last batch again (C-MSG-2). The stored conversation is read with
``GET /api/chat/messages``. This is the default protocol: every scenario
written before protocols existed runs through it unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import ScenarioError
from harness.scenario.frontend import Chat, Sync
from harness.scenario.model import ChatStep, ResyncStep, RetryStep
from harness.scenario.protocols.base import Adapter, Sent

if TYPE_CHECKING:
    from harness.result import Exchange
    from harness.scenario.view import StepRun


class Contract(Adapter):
    name = "contract"
    contract_checks = True

    def user_message(self, run: StepRun, text: str, model: str, index: int, *,
                     tick: bool) -> dict[str, Any]:
        return run.client.user_message(text, model, index, tick=tick)

    async def turn(self, run: StepRun, index: int, step: ChatStep | RetryStep,
                   msg: dict[str, Any], model: str, *, streaming: bool, retrying: bool) -> Sent:
        client = run.client
        current = (step.current_message_id if step.current_message_id is not None
                   else client.send_current_message_id)
        body = client.chat_body(msg, model, current_id=current)
        path = "/api/chat/stream" if streaming else "/api/chat"
        ex = await run.send(index, step.actor, "POST", path, body=body, purpose="chat",
                            token=step.token)
        data, error_text = run.judge_chat(index, step, ex, streaming=streaming)
        chat_record = Chat(step=index, actor=step.actor, body=body, data=data, sent_id=msg["id"])
        client.chats.append(chat_record)
        do_sync = getattr(step, "sync", True)
        if data is not None:
            assistant, batch = client.on_success(data, index, clear_error=retrying)
            chat_record.assistant_id = assistant["id"]
            batch_body: dict[str, Any] = {"messages": batch, "sessionId": client.session_id}
        else:
            failed = client.on_failure(msg, {"error": error_text})
            batch_body = {"message": failed, "sessionId": client.session_id}
        if do_sync:
            await sync(run, index, step.actor, batch_body)
        else:
            hold(run, index, step.actor, batch_body)
        return Sent(ex, {"response": ex.response_body, "message": msg, "request": body,
                         "data": data or {}})

    async def resync(self, run: StepRun, index: int, step: ResyncStep) -> None:
        """Post the client's last batch (again: or, held back, for the first time)."""
        last = run.client.last_batch
        if last is None:
            raise ScenarioError("resync needs an earlier sync",
                                location=run.scenario.location(index), key=f"steps[{index}]",
                                hint="put a chat step before it")
        ex = await sync(run, index, last.actor, last.body)
        if step.expect is not None:
            run.expect(index, ex, step.expect, default=None)


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
