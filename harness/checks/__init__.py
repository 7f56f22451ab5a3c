"""Built-in checks, run after every scenario unless it opts out (``checks:``).

Order matters: the read-only checks come first; ``idempotent`` replays every
accepted sync and so changes what a later check would read.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from harness.checks import answers, conversation, pairing, replay
from harness.result import Check

if TYPE_CHECKING:
    from harness.scenario.view import RunView

CHECKS: tuple[tuple[str, Callable[..., Awaitable[None]]], ...] = (
    (Check.PAIRING, pairing.check_request_ids),
    (Check.CONTEXT, pairing.check_context),
    (Check.ORDER, conversation.check_order),
    (Check.LOST, conversation.check_nothing_lost),
    (Check.PAIRING, pairing.check_stored_pairing),
    (Check.ROWS, conversation.check_rows),
    (Check.IDEMPOTENT, replay.check_idempotent),
    # last: they judge every answer of the run, the checks' own reads and replays too
    (Check.ENVELOPE, answers.check_envelopes),
    (Check.SERVER_ERROR, answers.check_server_errors),
    (Check.SCHEMA, answers.check_schema),
)


# checks plugins added (hook pytest_chat_harness_checks, harness.hooks): run after the built-in ones
EXTRA: list[Callable[[RunView], Awaitable[None] | None]] = []


def register_check(check: Callable[[RunView], Any]) -> None:
    if not callable(check):
        from harness.errors import InvalidInput

        raise InvalidInput(f"a check must be a function of the run, got {check!r}")
    if check not in EXTRA:
        EXTRA.append(check)


def unregister_check(check: Callable[[RunView], Any]) -> None:
    if check in EXTRA:
        EXTRA.remove(check)


async def run_builtin_checks(run: RunView) -> None:
    """The built-in checks (those the scenario did not switch off), then the plugins'.

    The contract's checks judge a contract run; a run of another protocol was judged
    by the protocol-neutral invariants after every step (:mod:`.invariants`)."""
    if run.protocol.contract_checks:  # other protocols: the invariants, after every step
        state = conversation.Snapshot()
        for name, check in CHECKS:
            if run.scenario.check_enabled(name):
                await check(run, state)
    for extra in list(EXTRA):
        outcome = extra(run)
        if inspect.isawaitable(outcome):
            await outcome


__all__ = ["CHECKS", "EXTRA", "register_check", "run_builtin_checks", "unregister_check"]
