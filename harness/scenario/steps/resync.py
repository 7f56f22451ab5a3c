"""``resync``: the client's second look at a conversation, through the run's protocol.

contract: post the client's last sync again (C-MSG-2); ai-sdk: reload the chat
(read the stored conversation and hold it to what the client saw).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.scenario.model import ResyncStep
from harness.scenario.steps.kind import StepKind

if TYPE_CHECKING:
    from harness.scenario.view import StepRun


async def resync(run: StepRun, index: int, step: ResyncStep) -> None:
    await run.protocol.resync(run, index, step)


KINDS = (StepKind("resync", ResyncStep, resync, title=lambda step: "resync", parallel=True),)
