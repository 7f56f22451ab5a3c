"""Running the explorer: profiles, one exploration, the mutant report.

An exploration is Hypothesis running :class:`~harness.explore.machine.
ConversationMachine` against one harness session. When the contract breaks,
Hypothesis shrinks the sequence, replays the shortest one last, and the
machine records it; the result carries it as scenario YAML, ready to save
under ``scenarios/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.config import RunConfig
from harness.errors import ConfigError
from harness.result import Failure

if TYPE_CHECKING:
    from hypothesis import settings

    from harness.db import Database


@dataclass(frozen=True)
class Profile:
    """How hard to look."""

    name: str
    max_examples: int  # sequences tried (before shrinking)
    steps: int  # at most this many rules per sequence
    derandomize: bool  # the same sequences every run (CI)
    timeouts: bool  # provider timeouts among the answers (each costs ~1.3 s)


PROFILES = {
    "ci": Profile("ci", max_examples=100, steps=10, derandomize=True, timeouts=False),
    "deep": Profile("deep", max_examples=1000, steps=30, derandomize=False, timeouts=True),
}


@dataclass
class Exploration:
    """What one exploration found: nothing, or a failing scenario."""

    profile: str
    mutants: frozenset[str]
    duration_s: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    yaml: str | None = None  # the shrunk failing sequence as a scenario file
    steps: int = 0

    @property
    def passed(self) -> bool:
        return self.yaml is None

    def summary(self) -> str:
        what = "reference" + "".join(f" --mutant {m}" for m in sorted(self.mutants))
        if self.passed:
            return f"explore ({self.profile}, {what}): the contract held ({self.duration_s:.1f} s)"
        checks = ", ".join(sorted({f.check for f in self.failures}))
        return (f"explore ({self.profile}, {what}): broken in {self.steps} step(s): {checks} "
                f"({self.duration_s:.1f} s)")


def _settings(profile: Profile, max_examples: int | None, steps: int | None) -> settings:
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    return settings(
        max_examples=max_examples or profile.max_examples,
        stateful_step_count=steps or profile.steps,
        derandomize=profile.derandomize, database=None, deadline=None,
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        report_multiple_bugs=False, print_blob=False,
    )


def explore(config: RunConfig, profile: str = "ci", *, db: Database | None = None,
            max_examples: int | None = None, steps: int | None = None) -> Exploration:
    """Explore the configured target; ``db`` shares a running PostgreSQL (not closed)."""
    from hypothesis.stateful import run_state_machine_as_test

    from harness.explore.driver import DEFAULT_MODEL, NAME, ExploreHarness
    from harness.explore.emit import scenario_yaml
    from harness.explore.invariants import invariant_steps
    from harness.explore.machine import bind
    from harness.targets.inprocess import quiet as quiet_reference

    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}", hint="choose " + " or ".join(PROFILES))
    chosen = PROFILES[profile]
    result = Exploration(profile=profile, mutants=config.mutants)
    began = time.perf_counter()
    harness = ExploreHarness(config, db=db)
    with harness, quiet_reference():
        harness.start()
        machine = bind(harness, timeouts=chosen.timeouts)
        try:
            run_state_machine_as_test(machine, settings=_settings(chosen, max_examples, steps))
        except Exception:
            if not machine.found:
                harness.raise_if_refused()  # a refusal explains it better than a traceback
                raise  # not a contract failure: a harness error, shown as such
        harness.raise_if_refused()  # then what it found is the refusal, not the contract's
    result.duration_s = time.perf_counter() - began
    if machine.found:
        found = machine.found[-1]  # Hypothesis replays the shrunk sequence last
        # the explorer's own invariants, as steps: the scenario fails the same way
        steps_out = [*found.steps, *invariant_steps(found.run, found.failures, found.claims)]
        options = "".join(f" --mutant {m}" for m in sorted(config.mutants))
        note = (f"Found by: chat-harness explore --profile {profile}{options}\n"
                "Save it under scenarios/ and it fails the same way: a regression test.")
        result.failures = found.failures
        result.steps = len(found.steps)
        result.yaml = scenario_yaml(NAME, steps_out, model=DEFAULT_MODEL,
                                    failures=found.failures, note=note)
    return result


def explore_mutants(config: RunConfig, profile: str = "ci", *, max_examples: int | None = None,
                    steps: int | None = None) -> dict[str, Exploration]:
    """Explore with each mutant on, one PostgreSQL for all: which ones does it find?"""
    import dataclasses

    from harness.db import provision
    from harness.reference.mutants import MUTANTS

    if config.target_url:
        raise ConfigError("--mutants needs a backend the harness starts",
                          hint="mutants are switched on in the reference backend: use "
                          "--target-cmd 'python -m harness.reference' or no target")
    out: dict[str, Exploration] = {}
    db = provision(config.db, url=config.db_url, image=config.db_image)
    try:
        for name in sorted(MUTANTS):
            one = dataclasses.replace(config, mutants=frozenset([name]))
            out[name] = explore(one, profile, db=db, max_examples=max_examples, steps=steps)
            print(f"  {name:28} {'found' if not out[name].passed else 'missed'} "
                  f"({out[name].duration_s:.1f} s)", flush=True)
    finally:
        db.close()
    return out
