"""Run a step by its kind's handler (the table: :mod:`harness.scenario.steps`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.scenario.steps import kind_of

if TYPE_CHECKING:
    from harness.runner.run import ScenarioRun
    from harness.scenario.model import Step


async def execute(run: ScenarioRun, index: int, step: Step) -> None:
    await kind_of(step).handler(run, index, step)
