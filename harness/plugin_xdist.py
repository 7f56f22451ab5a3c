"""The pytest plugin's part for pytest-xdist: one PostgreSQL server for all workers
(a database each), scenarios handed out longest first, and the workers' results sent
back to the controller, which writes the reports (:mod:`harness.plugin`). Loaded by the
plugin (``pytest_plugins``); its hooks are optional, so it costs nothing without xdist."""

from __future__ import annotations

from typing import Any

import pytest

from harness.plugin import (
    _ACTIVE,
    _RESULTS,
    _SCENARIOS,
    _WORKERS,
    SUFFIXES,
    _activate,
    _arm_signals,
    _is_scenario,
)

_SHARED_DB = pytest.StashKey[Any]()  # xdist controller: the Database workers share


def _xdist_controller(config: pytest.Config) -> bool:
    return (not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("xdist")
            and bool(getattr(config.option, "numprocesses", None))
            and not getattr(config.option, "collectonly", False))


def _share_db(config: pytest.Config) -> str | None:
    """Start the server the workers share (each creates its own database on it)."""
    if _SHARED_DB not in config.stash:
        if config.getoption("db_url") or config.getoption("target_url"):
            return None  # workers create their own databases on --db-url already
        from harness.config import RunConfig
        from harness.db import provision
        from harness.errors import HarnessError

        run_config = RunConfig.from_options(db=config.getoption("db"),
                                            db_image=config.getoption("db_image"))
        _arm_signals(config)
        try:
            db = provision(run_config.db, image=run_config.db_image)
        except HarnessError as exc:
            from harness.reporting.startup import stop

            stop(config, exc)
        config.add_cleanup(db.close)
        config.stash[_SHARED_DB] = db
    return config.stash[_SHARED_DB].tcp_url


def _expects_scenarios(config: pytest.Config) -> bool:
    """Whether the paths of this session hold scenarios, from the names alone (the
    xdist controller must decide before its workers collect): a path given is or lies in
    a scenario folder, or has one right under it."""
    from pathlib import Path

    dirs = set(config.getini("chat_harness_scenario_dirs"))
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path.is_file():
            if _is_scenario(config, path):
                return True
        elif path.name in dirs or any(p.name in dirs for p in path.parents) or any(
                (path / name).is_dir() for name in dirs):
            return True
    return False


def estimated_cost(scenario: Any, timeout_ms: int = 1000) -> float:
    """Seconds a scenario will take, roughly, from what it says: a little per scenario
    and per request, plus the provider's scripted waits (delays, gaps between chunks,
    answers past the backend's timeout), a ``parallel:`` group once per round."""
    return 0.05 + sum(_step_cost(step, timeout_ms) for step in scenario.steps)


def _step_cost(step: Any, timeout_ms: int) -> float:
    from harness.provider import Reply
    from harness.scenario.model import ParallelStep

    if isinstance(step, ParallelStep):
        group = (*step.before_parsed, *step.parsed)
        return step.rounds * (0.01 + sum(_step_cost(s, timeout_ms) for s in group))
    cost = 0.01
    for spec in step.answers() if hasattr(step, "answers") else ():
        answer = spec.to_answer(timeout_ms)
        wait = answer.delay_ms
        if isinstance(answer, Reply):
            chunks = -(-len(answer.content) // max(1, answer.chunk_chars))
            first = answer.first_gap_ms if answer.first_gap_ms is not None else answer.gap_ms
            wait += first + answer.gap_ms * max(0, chunks - 1)
        cost += 0.01 + min(wait, timeout_ms + 300) / 1000  # the backend stops waiting
    return cost


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An xdist worker of a run of scenarios only: the longest first (every worker sorts
    alike, as xdist needs). The controller hands items out in this order, so the long
    ones start at once on different workers and the short ones fill in at the end,
    instead of a long one starting last while the other worker idles."""
    from harness.plugin import ScenarioItem

    if not hasattr(config, "workerinput") or not items or not all(
            isinstance(item, ScenarioItem) for item in items):
        return
    cost = {item.nodeid: estimated_cost(item.scenario) for item in items}  # type: ignore[attr-defined]
    items.sort(key=lambda item: -cost[item.nodeid])


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller, per worker: the shared server's URL goes along (started only
    where the session's paths hold scenarios)."""
    url = _share_db(node.config) if (_xdist_controller(node.config)
                                     and _expects_scenarios(node.config)) else None
    if url:
        node.workerinput["chat_harness_db_url"] = url


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist controller: a worker collected scenarios, so this is a chat-harness run."""
    if any("::" in i and i.split("::")[0].endswith(SUFFIXES) for i in ids):
        _activate(node.config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: keep what the worker ran, for the summary and the reports."""
    sent = getattr(node, "workeroutput", {}).get("chat_harness")
    if sent:
        node.config.stash.setdefault(_WORKERS, []).append(sent)
    from harness.reporting.startup import from_worker

    from_worker(node.config, getattr(node, "workeroutput", {}).get("shouldstop"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker sends the controller its scenarios' results and clauses."""
    config = session.config
    if not hasattr(config, "workeroutput") or not config.stash.get(_ACTIVE, False):
        return
    import json

    from harness.reporting.jsonfile import record

    config.workeroutput["chat_harness"] = json.dumps({
        "records": [record(r, nodeid=n) for n, r in config.stash.get(_RESULTS, {}).items()],
        "covers": [[s.id, s.display, list(s.header.covers)]
                   for s in config.stash.get(_SCENARIOS, [])],
    }, default=str)
