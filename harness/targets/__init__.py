"""Targets: the backend under test, started, watched and stopped in one place.

Every tool of chat-harness (``run``, ``explore``, ``load``, ``fuzz``, the kill
matrix's runs) gets its backend here:

- :func:`start`: the backend the run options name, as a :class:`Target`
  (an HTTP client, the scripted provider's control, its log, ``alive``):
  the reference in-process (:mod:`~harness.targets.inprocess`), a
  ``--target-cmd`` started as a real subprocess next to the provider server,
  or a running ``--target-url`` (:mod:`~harness.targets.blackbox`);
- :func:`harness.targets.served.serve_reference`: the reference on a loopback
  port, for tools that speak plain HTTP with their own client (fuzz).

Nothing heavy is imported with the package: each kind loads when started.

Processes go through :class:`harness.processes.Child` (own session, stopped
in order, a guard that takes a command's whole tree along when the harness is
killed); folders through :func:`harness.folders.owned_folder`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.targets._base import Target

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.db import Database


def log_path(reports: Path, worker: str | None = None) -> Path:
    """Where the backend's output goes: ``reports/target.log``, ``target-gwN.log`` for
    pytest-xdist worker ``gwN`` (the worker the session says, never the environment's
    ``PYTEST_XDIST_WORKER``: a run started from a worker's test inherits that)."""
    return (reports / (f"target-{worker}.log" if worker else "target.log")).resolve()


@contextlib.asynccontextmanager
async def start(config: RunConfig, db: Database | None) -> AsyncIterator[Target]:
    """The backend of ``config`` (``--target-cmd``, ``--target-url`` or the reference
    in-process) on ``db``, ready; stopped when the block ends, however it ends."""
    from harness.targets import blackbox, inprocess

    target: contextlib.AbstractAsyncContextManager[Target]
    if config.mode == "url":
        target = blackbox.url(config)
    else:
        if db is None:
            from harness.errors import InternalError

            raise InternalError(f"a {config.mode} target needs a database")
        if config.mode == "cmd":
            target = blackbox.command(config, db, log=log_path(config.reports, config.worker))
        else:
            target = inprocess.reference(
                db, jwt_secret=config.jwt_secret, mutants=config.mutants,
                variants=config.variants, provider_timeout_ms=config.provider_timeout_ms,
                log=log_path(config.reports, config.worker))
    async with target as started:
        yield started


__all__ = ["Target", "log_path", "start"]
