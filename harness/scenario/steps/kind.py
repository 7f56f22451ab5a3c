"""A step kind: everything the harness knows of one kind of step, in one declaration.

A kind names the YAML key its steps start with, the model that validates them,
the title a step gets when it has none, whether it may run inside
``parallel:``, why a scenario using it needs an emptied database (the ids it
pins), and the handler that runs it. The table of kinds is
:mod:`harness.scenario.steps`; a plugin adds kinds through the hook
``pytest_chat_harness_step_kinds`` (:mod:`harness.hooks`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ScenarioError
from harness.result import Check
from harness.scenario import template
from harness.scenario.match import short
from harness.scenario.model import _Step

if TYPE_CHECKING:
    from harness.result import Exchange
    from harness.scenario.view import StepRun

StepBase = _Step  # what a kind's model derives from (title, as, token, provider, expect, ...)
Handler = Callable[["StepRun", int, Any], Awaitable[None]]


def _nothing_pinned(step: Any) -> str | None:
    return None


@dataclass(frozen=True)
class StepKind:
    """One kind of step (see the module's text)."""

    name: str  # the key a step of this kind starts with, e.g. ``http``
    model: type[StepBase]  # validates the step; its ``kind`` field is ``name``
    handler: Handler  # runs it: ``await handler(run, index, step)``
    title: Callable[[Any], str]  # the step's title when it has no ``title:``
    parallel: bool = False  # may run inside ``parallel:``
    # why a scenario with such a step needs a database emptied before it, or None
    pins: Callable[[Any], str | None] = _nothing_pinned


# the table, by name, in the order messages list the kinds (filled by the package)
TABLE: dict[str, StepKind] = {}


def kind_of(step: Any) -> StepKind:
    """The kind of a validated step (by its ``kind`` field)."""
    return TABLE[step.kind]


# what a capture may read that the client made itself (not the backend's answer)
_CLIENT_SIDE = ("message", "request")


def capture(run: StepRun, index: int, step: Any, sources: dict[str, Any],
            answered: Exchange | None = None) -> None:
    """The step's ``capture:`` from ``sources`` (``response``, ``request``, ...)."""
    for name, path in step.capture.items():
        root, _, rest = path.partition(".")
        if not (root in sources and rest):
            root, rest = "response", path
        value = template.dig(sources[root], rest)
        if not template.is_missing(value):
            run.variables[name] = value
            continue
        if root in _CLIENT_SIDE:
            raise ScenarioError(
                f"nothing at {path!r} in what the client sent, to capture as {name!r}",
                location=run.scenario.location(index), key=f"steps[{index}].capture.{name}",
                hint=f"it sent {short(sources[root], 200)}",
            )
        # the backend's answer lacks it: later steps that use it cannot run
        left = len(run.scenario.steps) - index - 1
        run.stop(f"the backend's answer has nothing at {path!r} to capture as {name!r} "
                 f"(it answered {short(sources['response'], 200)}); later steps use it"
                 + (f": the {left} step(s) after this one were not run" if left else ""),
                 check=Check.EXPECT, clause=_clause_of(answered), step=index)
        return


def _clause_of(answered: Exchange | None) -> str | None:
    """The clause that fixes the shape of an answer (its route's)."""
    from harness.contract.openapi import operation_for

    op = operation_for(answered.method, answered.path) if answered is not None else None
    return op.clause if op is not None else None
