"""The one exception tree of chat-harness.

::

    HarnessError                     everything chat-harness raises on purpose
    ├── UsageError                   the user asked for something impossible
    │   ├── ScenarioError            a scenario file is broken (file, line, key, hint)
    │   ├── ConfigError              bad options or environment (flag, value, hint)
    │   └── InvalidInput             a value given is not one accepted (also a ValueError)
    │       └── WireError            (harness.provider.wire) a JSON form of the provider API
    ├── EnvironmentProblem           a part the harness needs did not come up
    │   ├── DatabaseError            PostgreSQL could not be provisioned or reached
    │   └── TargetError              the backend under test did not start / answer
    │       └── TargetRefused        it answered, but refused most requests (auth, routes)
    ├── Skip                         a scenario cannot run in this mode (no database, ...)
    ├── ScenarioFailed               a scenario ran and broke the contract (holds its result)
    ├── NotApplicable                the oracle cannot judge a request (the backend refuses it)
    └── InternalError                a bug in chat-harness itself

A backend that breaks the contract is *not* an exception: check failures are
data (:class:`harness.result.Failure`), rendered by reporters. ``ScenarioFailed``
only carries such a result through pytest, which wants a failed test to raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class HarnessError(Exception):
    """Base of every error chat-harness raises on purpose."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def render(self) -> str:
        text = self.message
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.render()


class UsageError(HarnessError):
    """The user asked for something chat-harness cannot do as asked."""


@dataclass(frozen=True)
class Location:
    """A place in a scenario file. ``line`` is 1-based; 0 means unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class ScenarioError(UsageError):
    """A scenario file cannot be loaded: names file, 1-based line, key, expectation."""

    def __init__(
        self,
        message: str,
        *,
        location: Location,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.location = location
        self.key = key
        super().__init__(message, hint=hint)

    def render(self) -> str:
        where = str(self.location)
        what = f"{self.key}: {self.message}" if self.key else self.message
        text = f"{where}: {what}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


class ConfigError(UsageError):
    """An option, environment variable or target setting is wrong."""


class InvalidInput(UsageError, ValueError):
    """A value given to chat-harness is not one it accepts (a name, a file's format, a
    JSON form). Also a :class:`ValueError`, for the callers that catch those."""


class EnvironmentProblem(HarnessError):
    """Something the harness needs to run did not come up."""


class DatabaseError(EnvironmentProblem):
    """PostgreSQL could not be provisioned, reached or prepared."""


class TargetError(EnvironmentProblem):
    """The backend under test could not be started or did not answer."""


class TargetRefused(TargetError):
    """The backend answered, but refused most of a run's requests for a reason of setup
    (401/403 to the run's own tokens, 404 on a route it must have): nothing was tested."""


class Skip(HarnessError):
    """This scenario cannot run in this mode (the reason is shown, e.g. no database)."""


class ScenarioFailed(HarnessError):
    """A scenario ran and its checks failed; ``result`` holds the failures (data)."""

    def __init__(self, result: Any) -> None:
        super().__init__(str(result.scenario_id))
        self.result = result


class NotApplicable(HarnessError):
    """The request is not one the oracle can judge (the backend must refuse it)."""


class InternalError(HarnessError):
    """A bug in chat-harness. Please report it with the command you ran."""
