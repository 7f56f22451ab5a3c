"""``retry``: resend a failed message under its own id (C-MSG-5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import ScenarioError
from harness.result import Check
from harness.scenario import lint
from harness.scenario.model import RetryStep
from harness.scenario.steps.chat import converse
from harness.scenario.steps.kind import StepKind

if TYPE_CHECKING:
    from harness.scenario.view import StepRun


async def retry(run: StepRun, index: int, step: RetryStep) -> None:
    where = run.scenario.location(index)
    client = run.client
    if step.retry == "last":
        failed = [m for m in client.history if m["role"] == "user" and m.get("error")]
        if not failed:
            # the file names an earlier step whose provider fails (checked when it was
            # loaded): that step's answer was a success, which is the backend's fault
            _depends_on_failure(run, index, lint.retry_target(
                run.scenario.steps, index, run.provider_timeout_ms))
            return
        msg = failed[-1]
    else:
        sent = [c for c in client.chats if c.step == step.retry - 1 and c.sent_id]
        if not sent:
            raise ScenarioError(f"step {step.retry} sent no chat message", location=where,
                                key=f"steps[{index}].retry", hint="name an earlier chat step")
        found = client.find_user(sent[0].sent_id)
        assert found is not None
        if not found.get("error"):
            _depends_on_failure(run, index, step.retry - 1)
            return
        msg = found
    model = step.model or msg.get("originalModel") or run.scenario.header.model or ""
    await converse(run, index, step, msg, str(model), streaming=step.streaming, retrying=True)


def _depends_on_failure(run: StepRun, index: int, failing: int | None) -> None:
    """A retry whose message did not fail: blame the step that should have failed."""
    if failing is None:
        raise ScenarioError("retry needs an earlier failed message",
                            location=run.scenario.location(index), key=f"steps[{index}].retry",
                            hint="put a chat step whose provider fails before it")
    outcome = lint.step_outcome(run.scenario.steps[failing], run.provider_timeout_ms)
    if outcome is None:  # a script the contract does not decide (raw, no answer planned)
        raise ScenarioError(
            f"step {failing + 1}'s message did not fail, and its provider script does not "
            "make it fail", location=run.scenario.location(index),
            key=f"steps[{index}].retry",
            hint=f"give step {failing + 1} a provider script that fails, e.g. "
            "'provider: {status: 503}'")
    left = len(run.scenario.steps) - index - 1
    run.stop(f"step {failing + 1} should have failed ({outcome.why}; "
             f"{outcome.clause} makes that {outcome.describe()}) but the backend answered "
             f"success; step {index + 1} retries its message and was not run"
             + (f", nor the {left} step(s) after it" if left else ""), check=Check.OUTCOME,
             clause=outcome.clause, step=failing)


KINDS = (StepKind("retry", RetryStep, retry, title=lambda step: f"retry {step.retry}",
                  parallel=True),)
