"""``parallel``: several steps sent at once, in ``rounds``, behind an optional barrier.

A round runs the group's ``before:`` steps in order, then every step of the
group at once, each in its own task over its own connection (see
:mod:`harness.scenario.rounds`), then the invariants that hold whatever the
interleaving (:mod:`harness.checks.races`, through ``run.judge_round``).
Failures found while a round runs name the round and the request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from harness.result import WHERE
from harness.scenario import template
from harness.scenario.model import ParallelStep
from harness.scenario.rounds import PREFIX, SLOT, Barrier, Slot
from harness.scenario.steps.kind import StepKind, kind_of

if TYPE_CHECKING:
    from harness.scenario.view import StepRun


def fresh_names(step: ParallelStep) -> list[str]:
    """The ``${fresh.NAME}`` names the group's steps use (drawn at each round's start)."""
    used = template.names([s.model_dump(exclude={"capture"})
                           for s in (*step.before_parsed, *step.parsed)])
    return [n[len(PREFIX):] for n in used if n.startswith(PREFIX)]


async def parallel(run: StepRun, index: int, step: ParallelStep) -> None:
    lines = step.lines
    for number in range(1, step.rounds + 1):
        run.begin_round(index, number, fresh_names(step))
        for j, sub in enumerate(step.before_parsed):
            where = WHERE.set(f"round {number} of {step.rounds}, before[{j}]")
            try:
                await run.perform(index, sub)
            finally:
                WHERE.reset(where)
            if run.stopped is not None:
                return
        barrier = Barrier(len(step.parsed), run.warm_connections) if step.barrier else None
        slots = [Slot(round=number, rounds=step.rounds, request=j + 1,
                      line=lines[j] if j < len(lines) else 0, barrier=barrier)
                 for j in range(len(step.parsed))]
        outcomes = await asyncio.gather(
            *(_request(run, index, sub, slot) for sub, slot in zip(step.parsed, slots,
                                                                   strict=True)),
            return_exceptions=True)
        for outcome in outcomes:  # a scenario error (or a bug) of one request: after all ended
            if isinstance(outcome, BaseException):
                raise outcome
        await run.judge_round(index, step, slots)
        if run.stopped is not None:
            return


async def _request(run: StepRun, index: int, sub: object, slot: Slot) -> None:
    SLOT.set(slot)  # this task's own context: the other requests do not see it
    WHERE.set(slot.where)
    try:
        await run.perform(index, sub)  # type: ignore[arg-type]
    finally:
        await slot.done()


def pins(step: ParallelStep) -> str | None:
    """What the first of its steps that pins ids pins."""
    return next((why for sub in (*step.before_parsed, *step.parsed)
                 if (why := kind_of(sub).pins(sub))), None)


def _title(step: ParallelStep) -> str:
    text = f"parallel ({len(step.parsed)} at once"
    if step.rounds > 1:
        text += f", {step.rounds} rounds"
    return text + (", barrier)" if step.barrier else ")")


KINDS = (StepKind("parallel", ParallelStep, parallel, title=_title, pins=pins),)
