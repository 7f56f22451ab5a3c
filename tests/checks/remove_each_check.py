"""Prove the checks' tests do their job: remove each check in turn, its own tests must fail.

For every built-in check (and the checks inside the runner) this runs pytest
on the check's own test file in a subprocess with ``CHECKKIT_REMOVE=<check>``;
``conftest.py`` next to this file then removes that one check before the
tests run (its function becomes a no-op, or its failures are never recorded
where the check is a few lines inside a bigger runner function). At least one
test of the file must fail, else the file does not test that check. First the
whole folder runs once with nothing removed: it must pass.

Prints a table check -> failing tests, and the time it took; exits 1 when a
removal went unnoticed. Run from the checkout's root::

    python tests/checks/remove_each_check.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VARIABLE = "CHECKKIT_REMOVE"


@dataclass(frozen=True)
class Removal:
    check: str  # where the check lives, as the table shows it
    tests: str  # its own test file, in this folder
    remove: Callable[[], None]  # makes it a no-op, in this process


async def _nothing(run: Any, state: Any) -> None:
    """A built-in check with its body removed."""


def _builtin(module: str, name: str) -> Callable[[], None]:
    def remove() -> None:
        import importlib

        import harness.checks

        home = importlib.import_module(f"harness.checks.{module}")
        target = getattr(home, name)
        entries = harness.checks.CHECKS
        if not any(fn is target for _, fn in entries):
            raise RuntimeError(f"{module}.{name} is not in harness.checks.CHECKS")
        # where the run looks it up, and where a test that calls it alone does
        harness.checks.CHECKS = tuple((label, _nothing if fn is target else fn)
                                      for label, fn in entries)
        setattr(home, name, _nothing)
    return remove


def _check_rows() -> None:
    from harness.checks import conversation

    async def nothing(run: Any, sent: Any) -> None:
        """The DB half of check_nothing_lost, removed."""

    conversation._check_rows = nothing  # type: ignore[assignment]


def _provider_script() -> None:
    from harness.checks import expect

    expect.provider_script = lambda run, index, end: None  # type: ignore[assignment]


def _silenced(check: str) -> Callable[[], None]:
    """A check written inline in a runner function: its failures are never recorded."""
    def remove() -> None:
        from harness.result import ScenarioResult

        fail = ScenarioResult.fail

        def without(self: ScenarioResult, name: str, message: str, **kw: Any) -> None:
            if name != check:
                fail(self, name, message, **kw)

        ScenarioResult.fail = without  # type: ignore[method-assign]
    return remove


def _outcome() -> None:
    """The provider-script oracle: its status and reply checks removed, its stream
    verdicts (inline in check_outcome) silenced."""
    from harness.checks import outcome

    outcome._judge_status = lambda *args, **kw: None  # type: ignore[assignment]
    outcome._check_reply = lambda *args, **kw: None  # type: ignore[assignment]
    _silenced("outcome")()


REMOVALS = [
    Removal("pairing.check_request_ids", "test_pairing.py",
            _builtin("pairing", "check_request_ids")),
    Removal("pairing.check_stored_pairing", "test_stored_pairing.py",
            _builtin("pairing", "check_stored_pairing")),
    Removal("pairing.check_context", "test_context.py", _builtin("pairing", "check_context")),
    Removal("conversation.check_order", "test_order.py",
            _builtin("conversation", "check_order")),
    Removal("conversation.check_nothing_lost", "test_lost.py",
            _builtin("conversation", "check_nothing_lost")),
    Removal("conversation._check_rows (lost, in the DB)", "test_lost.py", _check_rows),
    Removal("conversation.check_rows", "test_rows.py", _builtin("conversation", "check_rows")),
    Removal("replay.check_idempotent", "test_idempotent.py",
            _builtin("replay", "check_idempotent")),
    Removal("answers.check_envelopes", "test_envelope.py",
            _builtin("answers", "check_envelopes")),
    Removal("answers.check_server_errors", "test_server_error.py",
            _builtin("answers", "check_server_errors")),
    Removal("answers.check_schema", "test_schema_check.py", _builtin("answers", "check_schema")),
    Removal("expect.provider_script", "test_provider_script.py", _provider_script),
    Removal("outcome.parse_stream/check_outcome (stream)", "test_stream.py", _silenced("stream")),
    Removal("expect.check_sync (sync)", "test_sync.py", _silenced("sync")),
    Removal("outcome.check_outcome (outcome)", "test_outcome.py", _outcome),
]
BY_CHECK = {r.check: r for r in REMOVALS}


def apply_from_environment() -> None:
    """Called by conftest.py: remove the check ``CHECKKIT_REMOVE`` names, if any."""
    name = os.environ.get(VARIABLE)
    if not name:
        return
    if name not in BY_CHECK:
        raise RuntimeError(f"{VARIABLE}={name!r}: no such check; known: {sorted(BY_CHECK)}")
    BY_CHECK[name].remove()


@dataclass
class Outcome:
    code: int  # pytest's exit code
    failed: list[str]  # tests that failed
    xpassed: list[str]  # strict xfails (a known check problem) that passed: not counted
    output: str


def _pytest(target: str, removed: str | None) -> Outcome:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if removed is not None:
        env[VARIABLE] = removed
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", target, "-q", "-p", "no:cacheprovider",
             f"--junitxml={report}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        cases = ElementTree.parse(report).iter("testcase") if report.exists() else iter(())
        failed, xpassed = [], []
        for case in cases:
            problem = case.find("failure")
            if problem is None:
                continue
            name = case.get("name", "?")
            strict_xpass = (problem.get("message") or "").startswith("[XPASS(strict)]")
            (xpassed if strict_xpass else failed).append(name)
    return Outcome(done.returncode, failed, xpassed, done.stdout[-3000:] + done.stderr[-2000:])


def main() -> int:
    began = time.monotonic()
    folder = str(HERE.relative_to(ROOT))
    baseline = _pytest(folder, None)
    if baseline.code != 0:
        print(f"{folder} fails with nothing removed; fix that first:\n{baseline.output}")
        return 1
    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        outcomes = list(pool.map(lambda r: _pytest(f"{folder}/{r.tests}", r.check), REMOVALS))
    unnoticed = []
    width = max(len(r.check) for r in REMOVALS)
    print(f"{'check removed':<{width}}  failing tests of its own file")
    for removal, outcome in zip(REMOVALS, outcomes, strict=True):
        if outcome.code not in (0, 1):
            print(f"{removal.check}: pytest could not run {removal.tests} "
                  f"(exit {outcome.code}):\n{outcome.output}")
            unnoticed.append(removal.check)
            continue
        if not outcome.failed:
            unnoticed.append(removal.check)
        print(f"{removal.check:<{width}}  {removal.tests}: {len(outcome.failed)} failing")
        for name in outcome.failed or ["NONE: no test noticed"]:
            print(f"{'':<{width}}    {name}")
        for name in outcome.xpassed:
            print(f"{'':<{width}}    ({name}: the xfail of a known problem of this check "
                  "passes without it; not counted)")
    print(f"took {time.monotonic() - began:.1f} s")
    if unnoticed:
        print("removed without a failing test: " + ", ".join(unnoticed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
