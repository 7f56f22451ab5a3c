"""``chat`` and ``stream``: play the chat front end (send a message, read the answer),
through the run's protocol (contract: ``POST /api/chat`` or ``/api/chat/stream``, then the
client's sync; :mod:`harness.scenario.protocols`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.contract import oracle
from harness.errors import ScenarioError
from harness.scenario import template
from harness.scenario.match import short
from harness.scenario.model import ChatStep, RetryStep, StreamStep
from harness.scenario.steps.kind import StepKind, capture

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
    msg = run.protocol.user_message(run, str(text), model, index, tick=step.at is None)
    await converse(run, index, step, msg, model, streaming=streaming, retrying=False)


async def converse(run: StepRun, index: int, step: ChatStep | RetryStep,
                   msg: dict[str, Any], model: str, *, streaming: bool, retrying: bool) -> None:
    """One user turn through the run's protocol, then the step's ``capture:``."""
    sent = await run.protocol.turn(run, index, step, msg, model, streaming=streaming,
                                   retrying=retrying)
    capture(run, index, step, sent.sources, sent.exchange)


KINDS = (
    StepKind("chat", ChatStep, chat, title=lambda step: f"chat {short(step.chat, 50)}",
             parallel=True),
    StepKind("stream", StreamStep, chat, title=lambda step: f"stream {short(step.stream, 50)}",
             parallel=True),
)
