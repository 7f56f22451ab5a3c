"""chat-harness: conformance and regression tests for LLM chat backends.

The public API is what this module exports; everything else is internal.
Heavy parts (the runner, the backend, the database) load on first use, so
``import harness`` (and the pytest plugin) costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.errors import (
    ConfigError,
    DatabaseError,
    HarnessError,
    InternalError,
    ScenarioError,
    TargetError,
    UsageError,
)

_LAZY = {
    "Harness": "harness.runner.session",
    "RunConfig": "harness.config",
    "Scenario": "harness.scenario.load",
    "load_file": "harness.scenario.load",
    "run_scenarios": "harness.runner",
    "ScenarioResult": "harness.result",
    "Failure": "harness.result",
    "provision": "harness.db",
    "Database": "harness.db",
}

__all__ = [
    "ConfigError",
    "Database",
    "DatabaseError",
    "Failure",
    "Harness",
    "HarnessError",
    "InternalError",
    "RunConfig",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "TargetError",
    "UsageError",
    "load_file",
    "provision",
    "run_scenarios",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
