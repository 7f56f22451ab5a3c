"""The hooks a conftest.py or a plugin implements to extend chat-harness.

chat-harness runs inside pytest, so its hooks are pytest hooks (pluggy
hookspecs, registered by :mod:`harness.plugin` with ``pytest_addhooks``; named
``pytest_...`` so that pytest takes a plain function of a conftest for one).
Implement them in a ``conftest.py`` at the root of the tests (or in a plugin
module); pytest asks for them when the session is configured::

    # conftest.py
    from harness.result import Check

    async def replies_are_polite(run):                    # run: harness.scenario.view.RunView
        for ex in run.result.exchanges:
            if ex.purpose == "chat" and "rude" in str(ex.response_body):
                run.result.fail(Check.CUSTOM, f"{ex.brief()}: a rude answer", step=ex.step)

    def pytest_chat_harness_checks(config):
        return [replies_are_polite]

- ``pytest_chat_harness_checks`` returns extra checks: each is called (or awaited)
  with the run's read-only view after the built-in checks of every scenario,
  and reports with ``run.result.fail(Check.CUSTOM, message, step=..., clause=...)``.
- ``pytest_chat_harness_step_kinds`` returns extra step kinds
  (:class:`harness.scenario.steps.StepKind`: name, model, handler, title, ...);
  scenario files may then use them like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # nothing heavy at import: pytest loads this in every session
    import pytest

    from harness.scenario.steps import StepKind
    from harness.scenario.view import RunView

hookspec = pluggy.HookspecMarker("pytest")

CustomCheck = Callable[["RunView"], Awaitable[None] | None]


@hookspec
def pytest_chat_harness_checks(config: pytest.Config) -> list[CustomCheck]:  # type: ignore[empty-body]
    """Extra checks run after the built-in ones of every scenario, with the run's
    read-only view (:class:`harness.scenario.view.RunView`)."""


@hookspec
def pytest_chat_harness_step_kinds(config: pytest.Config) -> list[StepKind]:  # type: ignore[empty-body]
    """Extra step kinds (:class:`harness.scenario.steps.StepKind`) for scenario files."""


_INSTALLED: Any = None  # the config whose extensions are in the tables


def add_to(pluginmanager: pytest.PytestPluginManager) -> None:
    """Declare the hooks (from the plugin's ``pytest_addhooks``) and ask them at configure."""
    import sys

    pluginmanager.add_hookspecs(sys.modules[__name__])
    if not pluginmanager.has_plugin(_ASKER):
        pluginmanager.register(_Asker(), _ASKER)


_ASKER = "chat-harness-hooks"


class _Asker:
    """Asks the hooks when the session is configured, forgets their answers at its end."""

    def pytest_configure(self, config: pytest.Config) -> None:
        install(config)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        uninstall(config)


def install(config: pytest.Config) -> None:
    """Ask the hooks once per session; put what they return into the tables."""
    global _INSTALLED
    if _INSTALLED is config:
        return
    added_kinds = [kind for found in config.hook.pytest_chat_harness_step_kinds(config=config)
                   for kind in found or ()]
    added_checks = [check for found in config.hook.pytest_chat_harness_checks(config=config)
                    for check in found or ()]
    if not (added_kinds or added_checks):
        return  # nothing to add: the tables (and their imports) stay untouched
    from harness.checks import register_check
    from harness.scenario import steps

    for kind in added_kinds:
        steps.register(kind)
    for check in added_checks:
        register_check(check)
    config.stash[_ADDED] = (added_kinds, added_checks)
    _INSTALLED = config


def uninstall(config: pytest.Config) -> None:
    """Take the session's extensions out of the tables again (pytester runs many sessions
    in one process)."""
    global _INSTALLED
    kinds, checks = config.stash.get(_ADDED, ([], []))
    if not (kinds or checks):
        return
    from harness.checks import unregister_check
    from harness.scenario import steps

    for kind in kinds:
        steps.unregister(kind.name)
    for check in checks:
        unregister_check(check)
    if _INSTALLED is config:
        _INSTALLED = None


def _stash_key() -> Any:
    import pytest

    return pytest.StashKey[tuple[list["StepKind"], list[CustomCheck]]]()


_ADDED = _stash_key()
