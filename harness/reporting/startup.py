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

Under pytest-xdist a worker that stops asks the controller to stop the run (a
worker that just exited mid-item is a crash to xdist, an INTERNALERROR), and
:func:`from_worker` tells the cause and hint in the controller the same way.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import pytest

from harness.errors import HarnessError

RETURNCODE = 3  # the run could not be carried out (docs/reference/cli.md: exit codes)


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
    _notice(config).told.append((cause, after))
    session = config.pluginmanager.get_plugin("session")
    if hasattr(config, "workerinput") and session is not None:
        # a pytest-xdist worker: what it prints is not shown, and a worker that exits
        # in the middle of an item is a crash to the controller; a stop request with
        # the cause and the hint is what the controller reports
        session.shouldstop = " ".join((cause, *(line.strip() for line in after)))
    pytest.exit(cause, returncode=RETURNCODE)


def from_worker(config: pytest.Config, stop: object) -> None:
    """pytest-xdist controller, as a worker goes down: if it stopped the run because a
    part did not come up (:func:`stop`), tell its cause and hint as a serial run does."""
    if hasattr(config, "workerinput") or not (
            isinstance(stop, str) and stop.startswith("chat-harness cannot ")):
        return
    notice = _notice(config)
    if not notice.told:
        cause, _, hint = stop.partition(" Hint: ")
        notice.told.append((cause, [f"Hint: {hint}"] if hint else []))
        notice.worker = True


_NAME = "chat-harness-startup"


def _notice(config: pytest.Config) -> _Notice:
    notice = config.pluginmanager.get_plugin(_NAME)
    if notice is None:
        notice = _Notice(config)
        config.pluginmanager.register(notice, _NAME)
    return notice


class _Notice:
    """Registered when the run stops: writes the cause and the hint as the session
    ends, in place of the ``Exit`` repr pytest's terminal reporter would write."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.told: list[tuple[str, list[str]]] = []
        self.worker = False  # told by an xdist worker (the controller stops "interrupted")
        self.in_stop_line = False  # the cause is the terminal's "!!! ... !!!" line

    @pytest.hookimpl(trylast=True)
    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """xdist: the controller stops with ``Interrupted(CAUSE Hint: HINT)``; its line
        says the cause alone (the hint follows at the end)."""
        if not (self.worker and self.told):
            return
        crash = getattr(self._memo(), "reprcrash", None)
        if crash is not None and self.told[0][0] in str(getattr(crash, "message", "")):
            crash.message = self.told[0][0]
            self.in_stop_line = True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.told:
            session.exitstatus = RETURNCODE  # not "interrupted": the run could not be done

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if not self.told:
            return
        cause, after = self.told[0]
        reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
        crash = getattr(self._memo(), "reprcrash", None)
        if crash is not None and cause in str(getattr(crash, "message", "")):
            reporter._keyboardinterrupt_memo = None  # our stop, told below instead
        shown = after if self.in_stop_line else [cause, *after]
        if reporter is not None:
            for line in shown:
                reporter.write_line(line, red=line is cause)
        else:
            sys.stderr.write("\n".join(shown) + "\n")

    def _memo(self) -> Any:
        """What pytest's terminal reporter keeps to print of the stop (a private name
        of pytest's: without it, pytest's own line is printed, nothing breaks)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return getattr(reporter, "_keyboardinterrupt_memo", None)


__all__ = ["RETURNCODE", "lines", "stop"]
