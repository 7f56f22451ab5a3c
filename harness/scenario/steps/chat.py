"""``chat`` and ``stream``: play the chat front end (send a message, pair and sync the
answer), through ``POST /api/chat`` or ``POST /api/chat/stream``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.contract import oracle
from harness.errors import ScenarioError
from harness.scenario import template
from harness.scenario.frontend import Chat
from harness.scenario.match import short
from harness.scenario.model import ChatStep, RetryStep, StreamStep
from harness.scenario.steps.kind import StepKind, capture
from harness.scenario.steps.resync import hold, sync

if TYPE_CHECKING:
    from harness.scenario.view import StepRun


async def chat(run: StepRun, index: int, step: ChatStep) -> None:
    where = run.scenario.location(index)
    model = step.model or run.scenario.header.model
    if model is None:
        raise ScenarioError("a chat step needs a model", location=where,
                            key=f"steps[{index}].model",
                            hint="add 'model:' to the step or to the scenario")
    streaming = isinstance(step, StreamStep)
    raw_text = step.stream if isinstance(step, StreamStep) else step.chat
    text = template.render(raw_text, run.variables, location=where, key=f"steps[{index}].chat")
    if step.at is not None:
        at = oracle.parse_ts(step.at)
        if at is None:
            raise ScenarioError(f"expected an ISO-8601 timestamp, got {step.at!r}",
                                location=where, key=f"steps[{index}].at",
                                hint="e.g. 2025-08-12T14:35:45.281Z")
        run.client.clock.set(at)
    msg = run.client.user_message(str(text), model, index, tick=step.at is None)
    await converse(run, index, step, msg, model, streaming=streaming, retrying=False)


async def converse(run: StepRun, index: int, step: ChatStep | RetryStep,
                    msg: dict[str, Any], model: str, *, streaming: bool, retrying: bool) -> None:
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
    capture(run, index, step, {"response": ex.response_body, "message": msg, "request": body,
                               "data": data or {}}, ex)


KINDS = (
    StepKind("chat", ChatStep, chat, title=lambda step: f"chat {short(step.chat, 50)}",
             parallel=True),
    StepKind("stream", StreamStep, chat, title=lambda step: f"stream {short(step.stream, 50)}",
             parallel=True),
)
