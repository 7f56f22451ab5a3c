"""This repository's pytest configuration, written as the example of how a repository
that tests a chat backend with chat-harness configures and extends it.

Such a repository holds::

    scenarios/          YAML scenarios: pytest collects each one as a test
    fixtures/           schema.sql (and request bodies the scenarios name)
    tests/              Python tests; the fixtures chat_backend, chat_provider and chat_db
                        give them the scenarios' backend, scripted provider and database
    conftest.py         this file: what to test, on which database, custom checks

chat-harness is a pytest plugin: installed, it loads itself (``-p no:chat_harness``
keeps it out, ``-p harness.plugin`` names it explicitly) and does nothing until it
collects a scenario or a test asks for one of its fixtures. Its options
(``pytest --help``, section chat-harness) are those of ``chat-harness run``; the
defaults below apply where the command line gives none.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

# What this repository tests, unless the command line says otherwise (the keys are the
# options' names: --target-cmd is target_cmd). Here: the reference backend, in process.
# A repository testing its own backend names its start command once, here, e.g.
#     "target_cmd": "exec node .next/standalone/server.js",
# or a backend it starts itself: "target_url": "http://127.0.0.1:3000".
# The schema and request bodies come from ./fixtures ("fixtures_dir" names another).
DEFAULTS: dict[str, Any] = {"target": "reference"}

# The database: a real PostgreSQL the harness starts and stops itself, "auto" by
# default (a container where a Docker engine answers, else the embedded server).
# A repository that wants one kind everywhere sets it here, e.g. "embedded" (no Docker
# needed) or "url" with "db_url"; the command line (--db, --db-url) and the environment
# (CHAT_HARNESS_DB, CHAT_HARNESS_DATABASE_URL) still win.
DATABASE: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("harness.plugin"):
        return  # chat-harness is not loaded in this session (-p no:chat_harness)
    for name, value in DEFAULTS.items():
        if config.getoption(name) in (None, "", [], False):
            setattr(config.option, name, value)
    database_given = (config.getoption("db") or config.getoption("db_url")
                      or os.environ.get("CHAT_HARNESS_DB")
                      or os.environ.get("CHAT_HARNESS_DATABASE_URL"))
    if not database_given:
        for name, value in DATABASE.items():
            setattr(config.option, name, value)


# Custom checks: chat-harness judges every answer with its built-in checks
# (harness/checks/); a repository adds its own by implementing the hook
# pytest_chat_harness_checks (harness/hooks.py, docs/guides/extending.md). Each check gets the
# run's read-only view (harness.scenario.view.RunView) after every scenario and reports
# with run.result.fail. This repository adds one that no clause spells out but every
# backend should keep: the provider's API key (OPENROUTER_API_KEY) never reaches a client.


def key_never_leaks(run: Any) -> None:
    from harness.result import Check

    key = run.variables.get("provider_api_key")
    if not key:
        return
    for ex in run.result.exchanges:
        if key in str(ex.response_body) or any(key in v for v in ex.headers.values()):
            run.result.fail(Check.CUSTOM, f"{ex.brief()}: the answer carries the provider's "
                            "API key (OPENROUTER_API_KEY)", step=ex.step)


def pytest_chat_harness_checks(config: pytest.Config) -> list[Any]:
    return [key_never_leaks]
