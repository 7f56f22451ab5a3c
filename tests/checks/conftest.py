"""The checks' tests: every failure a run produced is pinned, whole.

A test asserts the check, clause and a stable part of the message it is about;
``snapshots/<test file>.json`` pins the rest of what the runs of each test
reported (every failure's check, clause, step, message, expected and actual:
what the terminal and the HTML report show), so a change to any of it is seen.
After a deliberate change, write them again and review the diff::

    CHECKKIT_SNAPSHOT=update pytest tests/checks

``CHECKKIT_REMOVE=<check>`` removes that check for the run (remove_each_check.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import checkkit
import pytest
from remove_each_check import apply_from_environment

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("CHECKKIT_SNAPSHOT") == "update"
_WRITTEN = pytest.StashKey[dict[str, dict[str, Any]]]()


def pytest_configure(config: pytest.Config) -> None:
    apply_from_environment()
    config.stash[_WRITTEN] = {}


def _pinned(results: list[Any]) -> list[list[dict[str, Any]]]:
    """What a run reported, as JSON data (``str()`` of what JSON has no type for)."""
    return json.loads(json.dumps(
        [[{"check": f.check, "clause": f.clause, "step": f.step, "message": f.message,
           "expected": f.expected, "actual": f.actual} for f in r.failures] for r in results],
        default=str, ensure_ascii=False))


@pytest.fixture(autouse=True)
def pinned_failures(request: pytest.FixtureRequest) -> Iterator[None]:
    recorded: list[Any] = []
    checkkit.RECORDED = recorded
    yield
    checkkit.RECORDED = None
    if os.environ.get("CHECKKIT_REMOVE"):
        return  # a check removed on purpose: its own assertions must fail, not this
    module = Path(str(request.node.fspath)).stem
    got = _pinned(recorded)
    if UPDATE:
        request.config.stash[_WRITTEN].setdefault(module, {})[request.node.name] = got
        return
    path = SNAPSHOTS / f"{module}.json"
    pinned = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    assert request.node.name in pinned, (
        f"no pinned failures for {request.node.name} in {path.name}: "
        "run CHECKKIT_SNAPSHOT=update pytest tests/checks and review the diff")
    assert got == pinned[request.node.name], (
        f"the failures of {request.node.name} changed from what {path.name} pins")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """CHECKKIT_SNAPSHOT=update: write what each test file's runs reported."""
    if not UPDATE:
        return
    SNAPSHOTS.mkdir(exist_ok=True)
    for module, tests in session.config.stash[_WRITTEN].items():
        path = SNAPSHOTS / f"{module}.json"
        old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        old.update(tests)
        path.write_text(json.dumps(dict(sorted(old.items())), indent=1, ensure_ascii=False)
                        + "\n", encoding="utf-8")
