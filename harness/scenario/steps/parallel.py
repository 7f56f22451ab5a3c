"""``parallel``: several steps sent at once (C-MSG-2 concurrency)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from harness.scenario.model import ParallelStep
from harness.scenario.steps.kind import StepKind, kind_of

if TYPE_CHECKING:
    from harness.scenario.view import StepRun


async def parallel(run: StepRun, index: int, step: ParallelStep) -> None:
    await asyncio.gather(*(run.perform(index, sub) for sub in step.parsed))


def pins(step: ParallelStep) -> str | None:
    """What the first of its steps that pins ids pins."""
    return next((why for sub in step.parsed if (why := kind_of(sub).pins(sub))), None)


KINDS = (StepKind("parallel", ParallelStep, parallel,
                  title=lambda step: f"parallel ({len(step.parsed)} at once)", pins=pins),)
