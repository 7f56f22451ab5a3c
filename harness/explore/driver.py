"""A live scenario run, driven one step at a time by the state machine.

The machine does not talk HTTP itself: every action it takes is a step of the
scenario language (``ChatStep``, ``RetryStep``, ``HttpStep``, ...) run by the
ordinary :class:`~harness.runner.run.ScenarioRun`, on the event loop and
target of an ordinary :class:`~harness.runner.session.Harness`. So the
explored conversation *is* a scenario the whole time: the target options of
``run`` apply unchanged, and a failing sequence is saved by writing out the
steps that ran.
"""

from __future__ import annotations

from pathlib import Path

from harness.checks import CHECKS
from harness.checks.conversation import Snapshot
from harness.config import RunConfig
from harness.db import Database
from harness.errors import ConfigError
from harness.explore.invariants import Claim, check_claims, check_refused, check_stats
from harness.refusals import Tally
from harness.result import Failure
from harness.runner.run import ScenarioRun
from harness.runner.session import Harness
from harness.scenario.load import Scenario
from harness.scenario.model import ClientOptions, Header, Step

NAME = "explored"  # the saved scenario keeps it: ids and the session derive from it
DEFAULT_MODEL = "google/gemini-2.0-flash-exp:free"


def empty_scenario() -> Scenario:
    """A scenario with no steps yet, as ``load_file`` would build it from a file."""
    header = Header(name=NAME, model=DEFAULT_MODEL, steps=[])
    return Scenario(name=NAME, file=Path(f"{NAME}.yaml"), display=f"{NAME}.yaml",
                    header=header, steps=(), step_lines=(), client=ClientOptions())


class ExploreHarness(Harness):
    """The harness session, on a database it may empty before every example; it
    counts what every example's requests got (a backend that refuses the run's
    tokens would otherwise look like a broken contract, or a kept one)."""

    def __init__(self, config: RunConfig, *, db: Database | None = None) -> None:
        super().__init__(config, db=db)
        self._tally = Tally("explore")
        self._last: ScenarioRun | None = None

    def start(self) -> None:
        config = self.config
        # every example is the same scenario (same ids): each needs an empty database
        if config.target_url and not (config.reset_db and (config.db_url or self.has_db)):
            raise ConfigError("explore needs a database it can empty between examples",
                              hint="with --target-url, give --db-url URL and --reset-db "
                              "(a test database of that backend)")
        super().start()

    def new_run(self) -> ScenarioRun:
        """A fresh run on an emptied database (as ``Harness.run`` prepares one)."""
        self.start()
        self._check_alive()
        self.db.reset()
        self._count()
        scenario = empty_scenario()
        self._last = ScenarioRun(scenario, self.context(scenario))
        return self._last

    def _count(self) -> None:
        last, self._last = self._last, None
        for ex in last.result.exchanges if last is not None else ():
            if not ex.error:  # every request of the explorer carries its own valid token
                self._tally.add(ex.method, ex.path, ex.status)

    def raise_if_refused(self) -> None:
        """Raise ``TargetRefused`` if the backend refused most of the run (see
        :mod:`harness.refusals`)."""
        self._count()
        self._tally.check()


# which built-in checks run when: see LiveRun.check
_AFTER_STEP = tuple((name, check) for name, check in CHECKS if name != "idempotent")
_AT_END = CHECKS[[name for name, _ in CHECKS].index("idempotent"):]


class LiveRun:
    """One example: steps go to the backend as they are chosen; checks after each."""

    def __init__(self, harness: ExploreHarness) -> None:
        self.harness = harness
        self.run = harness.new_run()
        self.claims: list[Claim] = []  # ids two users posted at once (harness.explore.races)
        harness.call(self.run.begin())

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.run.scenario.steps

    def step(self, step: Step) -> None:
        self.harness.call(self.run.run_step(len(self.run.scenario.steps), step))

    def check(self, *, final: bool = False) -> list[Failure]:
        """The invariants over everything so far; the failures (empty: all hold).

        After a step: the built-in checks but ``idempotent``, then the stats and
        the sessions only refused batches went to (harness.explore.invariants).
        At the end (``final``): ``idempotent`` and the checks after it, which
        judge its replays. ``idempotent`` replays every accepted sync twice,
        so after every step it would make a sequence quadratic in its syncs;
        the steps that replay (resync, replay, concurrent syncs) are the
        sequence's own, and checked as they run.
        """
        run = self.run

        async def checks() -> None:
            run.ctx.provider.step = None
            state = Snapshot()
            for name, check in _AT_END if final else _AFTER_STEP:
                if run.scenario.check_enabled(name):
                    await check(run, state)
            if not final and not run.result.failures:
                await check_stats(run)
                await check_refused(run)
                await check_claims(run, self.claims)

        if not run.result.failures:  # the step itself may have failed already
            self.harness.call(checks())
        return list(run.result.failures)
