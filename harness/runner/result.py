"""Results as data: what happened in a scenario, and what broke the contract.

Reporters (terminal, JSON, JUnit, HTML) render these; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Exchange:
    """One HTTP request the harness made to the backend, and the answer."""

    step: int | None
    purpose: str  # chat, sync, raw, read, replay
    actor: str
    method: str
    path: str
    request_body: Any
    status: int
    response_body: Any  # parsed JSON, or text
    headers: dict[str, str]
    elapsed_ms: float
    error: str | None = None  # transport error (no answer)
    expected: int | str | list[int] | None = None  # the status a step's expectation allowed

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> dict[str, Any]:
        return self.response_body if isinstance(self.response_body, dict) else {}

    def brief(self) -> str:
        if self.error:
            return f"{self.method} {self.path} -> no answer ({self.error})"
        code = self.json().get("code")
        tail = f" {code}" if isinstance(code, str) else ""
        return f"{self.method} {self.path} -> {self.status}{tail}"


@dataclass
class Failure:
    """One way the backend broke the contract (or the scenario's expectations)."""

    check: str  # expect, sync, pairing, context, order, lost, idempotent, provider_script
    message: str
    step: int | None = None
    expected: Any = None
    actual: Any = None
    clause: str | None = None


@dataclass
class StepRecord:
    index: int
    kind: str
    title: str
    line: int
    exchanges: list[Exchange] = field(default_factory=list)
    provider_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BackendLog:
    """The end of what the backend logged during a scenario, where it explains a failure
    (a 5xx or no answer): its last lines, and the file that holds all of it."""

    path: str  # "": not kept (--reports '')
    tail: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    scenario_id: str
    file: str
    target: str
    steps: list[StepRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    skipped: str | None = None
    duration_s: float = 0.0
    reproduce: str = ""
    # what the contract allows but --strict-fields lists (extra fields): never failures
    notes: list[str] = field(default_factory=list)
    backend_log: BackendLog | None = None

    @property
    def passed(self) -> bool:
        return not self.failures and self.skipped is None

    def fail(self, check: str, message: str, **kw: Any) -> None:
        self.failures.append(Failure(check=check, message=message, **kw))
