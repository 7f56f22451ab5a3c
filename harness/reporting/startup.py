"""How a run that cannot start, or cannot go on, is told: one line of cause, a hint,
and chat-harness's summary line, never pytest's ``Exit`` repr.

The pytest plugin stops the session with :func:`stop` when a part the run needs
(the database, the backend, the provider) fails: pytest's own ``pytest.exit``
would end the output with ``! _pytest.outcomes.Exit: ... !`` and the hint in the
middle of it. :func:`stop` still ends the session through ``pytest.exit`` (so
the run's ledger counts the scenarios not run and writes the reports), but the
text the user reads is this module's::

    chat-harness cannot run: GET http://127.0.0.1:9/api/health: connection refused ...
    Hint: start the backend first, ...
    chat-harness: stopped (chat-harness cannot run: ...) after 0 of 1 scenarios: ...
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import pytest

from harness.errors import HarnessError

RETURNCODE = 3  # the run could not be carried out (README: exit codes)


def lines(exc: HarnessError, lead: str) -> tuple[str, list[str]]:
    """The one-line cause (``chat-harness LEAD: ...``) and what follows it: the
    error's further lines (a backend's last log lines), indented, then its hint."""
    first, *rest = exc.message.strip().splitlines() or [type(exc).__name__]
    cause = f"chat-harness {lead}: {first.strip()}"
    after = [f"  {line.rstrip()}" for line in rest if line.strip()]
    if exc.hint:
        after.append(f"Hint: {exc.hint}")
    return cause, after


def stop(config: pytest.Config, exc: HarnessError, lead: str = "cannot run") -> NoReturn:
    """End the session because of ``exc``; the cause and hint are printed once, at the
    end, just before the summary line."""
    cause, after = lines(exc, lead)
    notice = config.pluginmanager.get_plugin(_NAME)
    if notice is None:
        notice = _Notice()
        config.pluginmanager.register(notice, _NAME)
    notice.told.append((cause, after))
    session = config.pluginmanager.get_plugin("session")
    if hasattr(config, "workerinput") and session is not None:
        # a pytest-xdist worker: what it prints is not shown, and a worker that exits
        # in the middle of an item is a crash to the controller; a stop request with
        # the cause and the hint is what the controller reports
        session.shouldstop = " ".join((cause, *(line.strip() for line in after)))
        # (the controller shows it as "! Interrupted: CAUSE Hint: HINT !", exit code 2)
    pytest.exit(cause, returncode=RETURNCODE)


_NAME = "chat-harness-startup"


class _Notice:
    """Registered when the run stops: writes the cause and the hint as the session
    ends, in place of the ``Exit`` repr pytest's terminal reporter would write."""

    def __init__(self) -> None:
        self.told: list[tuple[str, list[str]]] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if not self.told:
            return
        cause, after = self.told[0]
        reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
        memo = getattr(reporter, "_keyboardinterrupt_memo", None)
        crash = getattr(memo, "reprcrash", None)
        if crash is not None and cause in str(getattr(crash, "message", "")):
            reporter._keyboardinterrupt_memo = None  # our stop, told below instead
        if reporter is not None:
            for line in (cause, *after):
                reporter.write_line(line, red=line is cause)
        else:
            sys.stderr.write("\n".join((cause, *after)) + "\n")


__all__ = ["RETURNCODE", "lines", "stop"]
