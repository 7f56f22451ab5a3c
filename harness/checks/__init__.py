"""Built-in checks, run after every scenario unless it opts out (``checks:``).

Order matters: the read-only checks come first; ``idempotent`` replays every
accepted sync and so changes what a later check would read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.checks import answers, conversation, pairing, replay

if TYPE_CHECKING:
    from harness.scenario.view import RunView

CHECKS = (
    ("pairing", pairing.check_request_ids),
    ("context", pairing.check_context),
    ("order", conversation.check_order),
    ("lost", conversation.check_nothing_lost),
    ("pairing", pairing.check_stored_pairing),
    ("rows", conversation.check_rows),
    ("idempotent", replay.check_idempotent),
    # last: they judge every answer of the run, the checks' own reads and replays too
    ("envelope", answers.check_envelopes),
    ("server_error", answers.check_server_errors),
    ("schema", answers.check_schema),
)


async def run_builtin_checks(run: RunView) -> None:
    state = conversation.Snapshot()
    for name, check in CHECKS:
        if run.scenario.check_enabled(name):
            await check(run, state)


__all__ = ["CHECKS", "run_builtin_checks"]
