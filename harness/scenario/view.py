"""What checks and step kinds see of a running scenario: two small protocols.

The runner (:class:`harness.runner.run.ScenarioRun`) implements both; nothing
here imports it, so the checks (``harness/checks``) and the step kinds
(``harness/scenario/steps``) sit below the runner and never import it.

- :class:`RunView` is what a *check* reads: the scenario, the simulated
  client's record, every exchange (per step in ``result.steps``), the
  provider calls of each step, identities and variables; it reports failures
  with ``result.fail`` and may make requests (the checks that read back and
  replay) with ``send`` / ``read_messages``.
- :class:`StepRun` is what a *step kind's handler* drives: a view plus the
  state a step changes (variables, the stop flag) and the expectation checks
  it asks for while it runs (they live in ``harness/checks``; the runner
  forwards to them).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from harness.db import Database
    from harness.provider import Answer, ProviderCall
    from harness.result import Check, Exchange, ScenarioResult
    from harness.scenario.frontend import ChatClient, Sync
    from harness.scenario.load import Scenario
    from harness.scenario.model import Expect, ParallelStep, Step, Token
    from harness.scenario.protocols.base import Adapter
    from harness.scenario.rounds import Slot


class RunView(Protocol):
    """A read-only view of one scenario run, for checks."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def client(self) -> ChatClient: ...  # what the simulated front end did and holds
    @property
    def result(self) -> ScenarioResult: ...  # exchanges, failures; ``fail`` reports one
    @property
    def variables(self) -> Mapping[str, Any]: ...
    @property
    def step_calls(self) -> Mapping[int, list[ProviderCall]]: ...  # provider calls per step
    @property
    def conforming(self) -> set[int]: ...  # id() of answers the schema check passed
    @property
    def db(self) -> Database | None: ...  # None: no database access (--target-url alone)
    @property
    def protocol(self) -> Adapter: ...  # how the conversation-level steps speak (contract, ...)
    @property
    def strict_fields(self) -> bool: ...
    @property
    def provider_timeout_ms(self) -> int: ...

    def user_id(self, actor: str) -> str: ...

    def answers(self, step: Step) -> list[Answer]: ...  # the step's provider script

    async def send(
        self, step: int | None, actor: str, method: str, path: str, *, body: Any = None,
        params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
        auth: bool = True, purpose: str, token: Token | None = None, raw: bytes | None = None,
    ) -> Exchange: ...

    async def read_messages(self, session_id: str, actor: str) -> Exchange: ...


class StepRun(RunView, Protocol):
    """What a step kind's handler drives (see ``harness/scenario/steps``)."""

    @property
    def variables(self) -> MutableMapping[str, Any]: ...  # captures land here

    @property
    def stopped(self) -> str | None: ...  # why no more steps run (None: the run goes on)

    def load_fixture(self, index: int, name: str) -> Any: ...

    async def perform(self, index: int, step: Step) -> None: ...  # run a sub-step (parallel)

    def stop(self, message: str, *, check: Check | str, clause: str | None, step: int) -> None:
        """Fail at ``step`` and run no more steps (a later step depends on this answer)."""

    # the expectation checks a step asks for while it runs (harness.checks.expect/outcome)
    def expect(self, index: int, ex: Exchange, expect: Expect | None, *,
               default: int | str | None, clause: str | None = None, what: str = "") -> None: ...

    def judge_chat(self, index: int, step: Step, ex: Exchange, *, streaming: bool
                   ) -> tuple[dict[str, Any] | None, str]: ...

    def judge_sync(self, index: int, record: Sync, ex: Exchange, stored_before: set[Any]
                   ) -> None: ...

    def judge_rows(self, index: int, step: Step, rows: list[dict[str, Any]]) -> None: ...

    # the rounds of a parallel step (harness.scenario.steps.parallel)
    def begin_round(self, index: int, number: int, fresh: list[str] | None = None) -> None:
        """New ``${fresh.*}`` ids and ``${round}`` for round ``number``."""

    async def warm_connections(self, count: int) -> None:
        """Open ``count`` connections to the backend (a barrier, before it releases)."""

    async def judge_round(self, index: int, step: ParallelStep, slots: list[Slot]) -> None:
        """The invariants after a round, whatever the interleaving (harness.checks.races)."""
