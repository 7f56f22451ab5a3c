"""The plugin hooks (harness/hooks.py): a conftest adds a check and a step kind, and both act."""

from __future__ import annotations

import pytest

from harness.db import Database
from harness.scenario import steps

CONFTEST = '''
from typing import Literal

from harness.result import Check
from harness.scenario.steps import StepBase, StepKind


class CountStep(StepBase):
    """``count: NAME``: read the session back, keep how many messages it holds."""

    kind: Literal["count"] = "count"
    count: str


async def count(run, index, step):
    ex = await run.send(index, step.actor, "GET", "/api/chat/messages",
                        params={"session_id": run.variables["session_id"]}, purpose="read")
    run.expect(index, ex, step.expect, default=200)
    run.variables[step.count] = len(ex.json().get("messages") or [])


def pytest_chat_harness_step_kinds(config):
    return [StepKind("count", CountStep, count, title=lambda step: f"count into {step.count}")]


def counted_two(run):
    """Every scenario that counted must have counted the chat's two messages."""
    counted = [s for s in run.result.steps if s.kind == "count"]
    if not counted:
        run.result.fail(Check.CUSTOM, "no count step ran", clause="C-MSG-9")
    elif run.variables.get("stored") != 2:
        run.result.fail(Check.CUSTOM, f"counted {run.variables.get('stored')!r} messages "
                        f"(step {counted[0].title!r}), expected 2", clause="C-MSG-9")


def pytest_chat_harness_checks(config):
    return [counted_two]
'''

SCENARIO = """\
name: {name}
model: m/free
steps:
  - chat: hello
    provider: {{reply: hi there}}
{more}"""


def test_a_conftest_adds_a_check_and_a_step_kind(pytester: pytest.Pytester,
                                                 database: Database) -> None:
    from harness.checks import EXTRA

    before = list(EXTRA)  # this repository's own conftest.py adds one
    pytester.makeconftest(CONFTEST)
    folder = pytester.mkdir("scenarios")
    (folder / "counts.yaml").write_text(SCENARIO.format(name="counts", more="  - count: stored\n"))
    (folder / "forgets.yaml").write_text(SCENARIO.format(name="forgets", more=""))
    result = pytester.runpytest("scenarios", "--db-url", database.url, "-p", "no:randomly")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=1)
    # the check failed the scenario without the kind; with it, the kind's count reached
    # the check (2 messages stored by the chat), under the kind's own title
    assert "scenarios/counts.yaml ." in out, out
    assert "[custom C-MSG-9] no count step ran" in out, out
    results = (pytester.path / "reports" / "results.json").read_text()
    assert '"title": "count into stored"' in results
    # the session's kinds and checks are gone again with it
    assert "count" not in steps.names()
    assert before == EXTRA


def test_a_kind_may_not_take_a_built_in_name() -> None:
    from harness.errors import InvalidInput
    from harness.scenario.model import ChatStep

    async def nothing(run: object, index: int, step: object) -> None:
        """A handler that does nothing."""

    with pytest.raises(InvalidInput, match="exists already"):
        steps.register(steps.StepKind("chat", ChatStep, nothing, title=str))
    assert steps.KINDS["chat"].handler is not nothing


def test_the_table_declares_each_kind_once() -> None:
    """Every built-in kind: its model names it, its handler lives in its own module."""
    assert steps.names() == ["chat", "stream", "retry", "resync", "http", "db", "parallel"]
    for name, kind in steps.KINDS.items():
        assert kind.model.model_fields["kind"].default == name
        assert kind.handler.__module__.startswith("harness.scenario.steps."), name
    assert sorted(n for n, k in steps.KINDS.items() if k.parallel) == [
        "chat", "db", "http", "resync", "retry", "stream"]  # all but parallel itself
