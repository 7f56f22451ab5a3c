"""What a protocol adapter does for the conversation-level steps.

A protocol is how a chat backend is spoken to: how a user logs in, how a user
turn is sent and its answer read (a JSON body, a stream), and how the stored
conversation is read back (a route, or a declared SQL query against the
database the harness provides). The steps ``chat``, ``stream``, ``retry`` and
``resync`` (alone or inside ``parallel:``) go through the run's adapter; the
others (``http``, ``db``) speak raw HTTP and SQL whatever the protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from harness.provider import Side
    from harness.result import Exchange
    from harness.scenario.model import ChatStep, ResyncStep, RetryStep
    from harness.scenario.view import RunView, StepRun


class Sent(NamedTuple):
    """What a turn sent and got: the answer, and what a ``capture:`` may read."""

    exchange: Exchange
    sources: dict[str, Any]  # response, message, request, data


class Adapter:
    """One protocol (see the module's text); subclasses fill in the three moves."""

    name = ""
    # whether the built-in contract checks (C-... clauses) judge the run; the others
    # are judged by the protocol-neutral invariants (harness.checks.invariants)
    contract_checks = False

    def user_message(self, run: StepRun, text: str, model: str, index: int, *,
                     tick: bool) -> dict[str, Any]:
        """A new user message of the simulated client (its id in the protocol's form)."""
        raise NotImplementedError

    async def turn(self, run: StepRun, index: int, step: ChatStep | RetryStep,
                   msg: dict[str, Any], model: str, *, streaming: bool,
                   retrying: bool) -> Sent:
        """Send one user turn (``msg``; again under its own id when ``retrying``), read
        the answer, keep the client's view up to date, judge what the protocol fixes."""
        raise NotImplementedError

    def default_sides(self) -> tuple[Side, ...]:
        """Side rules every step gets after its own and its scenario's (none here)."""
        return ()

    def stored(self, run: RunView) -> list[dict[str, Any]] | None:
        """The conversation as the backend stored it, ``{id, role, text, parts}`` in
        order; None where the protocol reads it otherwise (contract: its own checks)."""
        return None

    async def resync(self, run: StepRun, index: int, step: ResyncStep) -> None:
        """The client's second look: store again (contract) or reload the chat."""
        raise NotImplementedError
