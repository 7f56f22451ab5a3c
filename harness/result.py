"""Results as data: what happened in a scenario, and what broke the contract.

Reporters (terminal, JSON, JUnit, HTML) render these; nothing here prints.
This module sits at the bottom of the layers (it imports nothing of the harness):
the scenario language, the checks, the runner and the reporters all use it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Where a failure happened inside a step, when the step runs several requests at once
# (``round 3 of 20, request 2 (line 14)``): set by the task of each request of a
# ``parallel:`` round, and put in front of the message of every failure it reports.
WHERE: ContextVar[str | None] = ContextVar("chat_harness_where", default=None)


class Check(StrEnum):
    """What found a failure: the one list of check names (a str, for reports and JSON).

    ``checks:`` in a scenario may switch off those in :data:`SWITCHABLE`.
    """

    EXPECT = "expect"  # a step's expect: (status, body, headers, provider)
    OUTCOME = "outcome"  # the provider script as an oracle (C-CHAT-3/4/5, C-STREAM-*)
    STREAM = "stream"  # the stream's framing (C-STREAM-1)
    SYNC = "sync"  # storing the client's messages
    DB = "db"  # a db step's rows
    PROVIDER_SCRIPT = "provider_script"  # the calls the script planned, no more, no fewer
    PAIRING = "pairing"
    CONTEXT = "context"
    ORDER = "order"
    LOST = "lost"
    ROWS = "rows"
    IDEMPOTENT = "idempotent"
    ENVELOPE = "envelope"
    SERVER_ERROR = "server_error"
    SCHEMA = "schema"
    STATS = "stats"  # explore: a session's stats are fresh and right
    ATOMIC = "atomic"  # explore: a refused batch stored nothing (C-MSG-3)
    # the protocol-neutral invariants (harness.checks.invariants), named by their ids
    I_ORDER = "I-ORDER"
    I_PAIR = "I-PAIR"
    I_LOST = "I-LOST"
    I_RESEND = "I-RESEND"
    I_CONTEXT = "I-CONTEXT"
    I_OWNER = "I-OWNER"
    CUSTOM = "custom"  # a check a plugin added (hook pytest_chat_harness_checks)
    SCENARIO_ERROR = "scenario_error"  # the scenario file is wrong (not the backend)
    HARNESS_ERROR = "harness_error"  # chat-harness itself broke


# the ids of the protocol-neutral invariants (harness.checks.invariants; docs/protocols.md):
# a scenario may name them under ``covers:`` next to the contract's clauses
INVARIANTS: tuple[str, ...] = tuple(c.value for c in Check if c.value.startswith("I-"))

# the checks a scenario's ``checks:`` may switch off, in the order its errors list them
SWITCHABLE: tuple[str, ...] = tuple(c.value for c in (
    Check.PAIRING, Check.CONTEXT, Check.ORDER, Check.LOST, Check.ROWS, Check.IDEMPOTENT,
    Check.PROVIDER_SCRIPT, Check.OUTCOME, Check.ENVELOPE, Check.SERVER_ERROR, Check.SCHEMA,
))


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

    check: Check  # a plain name is turned into its Check (ValueError if there is none)
    message: str
    step: int | None = None
    expected: Any = None
    actual: Any = None
    clause: str | None = None

    def __post_init__(self) -> None:
        self.check = Check(self.check)


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

    def fail(self, check: Check | str, message: str, **kw: Any) -> None:
        where = WHERE.get()
        if where:
            message = f"{where}: {message}"
        self.failures.append(Failure(check=Check(check), message=message, **kw))
