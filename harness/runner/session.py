"""A harness session: Postgres, the target and an event loop, for many scenarios.

Started lazily by the first scenario, closed once at the end, on failure and
on Ctrl-C alike. Scenarios run one after another on one event loop, so the
backend's connection pool lives as long as the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shlex
import shutil
import traceback
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from harness.config import RunConfig
from harness.db import Database, provision
from harness.errors import (
    DatabaseError,
    EnvironmentProblem,
    HarnessError,
    InternalError,
    ScenarioError,
)
from harness.folders import owned_folder
from harness.options import reproduce_argv
from harness.runner.result import BackendLog, ScenarioResult
from harness.runner.run import RunContext, ScenarioRun
from harness.scenario.load import Scenario
from harness.targets import Target

# How long a cancelled scenario gets to unwind after Ctrl-C or SIGTERM.
_CANCEL_GRACE_S = 5.0
# The backend's log shown with a failure it may explain: at most this many last lines.
LOG_TAIL_LINES = 20

T = TypeVar("T")


class Harness:
    def __init__(self, config: RunConfig, *, db: Database | None = None) -> None:
        self.config = config
        self._db = db
        self._owns_db = db is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self.target: Target | None = None
        self._salt = ""
        self._logs: str | None = None  # a folder of our own for the logs (--reports '')

    @property
    def db(self) -> Database:
        if self._db is None:
            raise InternalError("the harness session is not started")
        return self._db

    @property
    def has_db(self) -> bool:
        """False with ``--target-url`` and no ``--db-url``: DB-level checks are skipped."""
        return self._db is not None

    def start(self) -> None:
        if self.target is not None:
            return
        if not self.config.keep_logs and self._logs is None:  # no reports: no log left either
            self._logs = str(owned_folder("chat-harness-logs-"))
            self.config = dataclasses.replace(self.config, reports=Path(self._logs))
        config = self.config
        try:
            if self._db is None and config.mode == "url":
                if config.db_url:
                    from harness.db.url import attach

                    self._db = attach(config.db_url)
            elif self._db is None:
                # no import in a thread meanwhile: a Ctrl-C's KeyboardInterrupt that lands
                # in importlib's own weakref callback leaves the global import lock held by
                # this thread, and a thread importing then waits for it for good, while
                # this one waits for the module that thread holds (a hang, not a stop)
                self._db = provision(config.db, url=config.db_url, image=config.db_image,
                                     schema=config.schema if config.apply_schema else None)
            if self._db is not None and config.apply_schema and config.mode != "url":
                self._db.apply_schema(config.schema)
            self._loop = asyncio.new_event_loop()
            self._loop.set_exception_handler(_interruptions_once)
            self.target = self._loop.run_until_complete(self._start_target())
            # a backend that does not reset between runs sees fresh users and ids
            self._salt = "" if self._db is not None and config.reset_db else (
                secrets.token_hex(4) + "/")
        except BaseException:
            self.close()
            raise

    async def _start_target(self) -> Target:
        from harness import targets

        self._stack = contextlib.AsyncExitStack()
        return await self._stack.enter_async_context(targets.start(self.config, self._db))

    def reproduce(self, scenario: Scenario) -> str:
        """The command that reruns just ``scenario`` with this session's options."""
        return shlex.join(["chat-harness", "run", f"{scenario.display}::{scenario.id}",
                           *reproduce_argv(self.config)])

    def run(self, scenario: Scenario) -> ScenarioResult:
        protocol = self.config.protocol
        if protocol not in scenario.header.protocols:
            return ScenarioResult(
                scenario_id=scenario.id, file=scenario.display, target=self.config.target,
                skipped=f"it speaks {', '.join(scenario.header.protocols)}, this run "
                f"{protocol} (--protocol, or the profile's protocol:)",
                reproduce=self.reproduce(scenario))
        self.start()
        self._check_alive()
        profile = self.config.profile
        if self._db is not None and profile is not None and not self.config.apply_schema:
            if profile.reset_sql:  # the backend's own tables; else every scenario's ids are new
                try:
                    self._db.query(profile.reset_sql)
                except Exception as exc:  # psycopg's: the SQL is the profile's
                    raise DatabaseError(f"{profile.source}: reset_sql failed: {exc}",
                                        hint="reset_sql empties your backend's tables, e.g. "
                                        'DELETE FROM "Message_v2"; DELETE FROM "Chat"') from exc
        elif self._db is not None and self.config.reset_db:
            self._db.reset()
        elif scenario.pinned_ids:
            assert self.target is not None
            return ScenarioResult(
                scenario_id=scenario.id, file=scenario.display, target=self.target.name,
                skipped=f"{scenario.pinned_ids}, and the backend's database is not emptied "
                "between scenarios here (give --db-url URL --reset-db for a test database)",
                reproduce=self.reproduce(scenario))
        mark = self._log_size()
        run: ScenarioRun | None = None
        try:
            run = ScenarioRun(scenario, self.context(scenario))
            result = self.call(run.execute())
        except (EnvironmentProblem, KeyboardInterrupt):
            raise
        except ScenarioError as exc:  # found at run time: the scenario's fault, said as such
            result = self._ended(scenario, run, exc, "scenario_error", exc.render())
        except Exception as exc:  # a bug of the harness: counted, never lost
            result = self._ended(
                scenario, run, exc, "harness_error",
                f"chat-harness itself failed ({type(exc).__name__}: {exc}); this is a bug "
                "of the harness, not a finding about the backend: please report it with "
                "the command that reruns this scenario")
        self._attach_log(result, mark)
        return result

    def _ended(self, scenario: Scenario, run: ScenarioRun | None, exc: Exception, check: str,
               message: str) -> ScenarioResult:
        """The result of a scenario an exception ended: what ran, and a failure saying why."""
        assert self.target is not None
        result = run.result if run is not None else ScenarioResult(
            scenario_id=scenario.id, file=scenario.display, target=self.target.name,
            reproduce=self.reproduce(scenario))
        frames = traceback.extract_tb(exc.__traceback__)
        in_step = any(f.name == "run_step" for f in frames)
        step = result.steps[-1].index if in_step and result.steps else None
        trace = None if check == "scenario_error" else "".join(
            traceback.format_exception(exc)).rstrip()
        result.fail(check, message, step=step, actual=trace)
        return result

    def _log_size(self) -> int:
        log = self.target.log if self.target is not None else None
        try:
            return os.path.getsize(log) if log else 0
        except OSError:
            return 0

    def _attach_log(self, result: ScenarioResult, mark: int) -> None:
        """A failure with a 5xx or no answer gets the end of what the backend logged
        while the scenario ran: the log may say why."""
        log = self.target.log if self.target is not None else None
        if not log or result.passed or not any(
                ex.status >= 500 or ex.error for ex in result.exchanges):
            return
        try:
            with open(log, "rb") as f:
                f.seek(mark)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return
        lines = text.rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
        if lines:
            shown = Path(log)
            with contextlib.suppress(ValueError):
                shown = shown.relative_to(Path.cwd())
            # with --reports '' the whole log is removed at the end: no path to give
            result.backend_log = BackendLog(path="" if self._logs else str(shown), tail=lines)

    def context(self, scenario: Scenario) -> RunContext:
        """What a run of ``scenario`` needs from this session (client, provider, DB...).

        For drivers that run steps one by one (``chat-harness explore``) rather
        than whole scenarios; :meth:`run` uses it too.
        """
        self.start()
        target = self.target
        assert target is not None
        return RunContext(
            client=target.client, provider=target.provider, db=self._db,
            jwt_secret=self.config.jwt_secret, target=target.name,
            provider_timeout_ms=target.provider_timeout_ms,
            request_timeout_s=self.config.request_timeout_s,
            strict_fields=self.config.strict_fields,
            fixtures_dir=self.config.fixtures, reproduce=self.reproduce(scenario),
            provider_api_key=target.provider_api_key, salt=self._salt,
            protocol=self.config.protocol, profile=self.config.profile,
        )

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to its end on the session's loop, where the target's client lives.

        On Ctrl-C or SIGTERM the coroutine is cancelled before the exception goes
        on, so nothing runs against a target being closed; the wait for it to
        unwind is bounded, so a step that swallows the cancellation cannot hold
        the run (and the processes it owns) hostage.
        """
        loop = self._loop
        if loop is None:
            coro.close()
            raise InternalError("the harness session is not started")
        task = loop.create_task(coro)
        try:
            return loop.run_until_complete(task)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.wait([task], timeout=_CANCEL_GRACE_S))
            raise

    def _check_alive(self) -> None:
        """A started backend that died stops the run at once, with its last words."""
        if self.target is not None:
            self.target.check_alive()

    def close(self) -> None:
        """Stop the target, the loop and (if ours) the database. Safe to call twice."""
        loop, self._loop = self._loop, None
        stack, self._stack = self._stack, None
        self.target = None
        try:
            if loop is not None:
                if stack is not None:
                    with contextlib.suppress(Exception):
                        loop.run_until_complete(stack.aclose())
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
        finally:
            logs, self._logs = self._logs, None
            if logs is not None:
                shutil.rmtree(logs, ignore_errors=True)
            if self._owns_db and self._db is not None:
                db, self._db = self._db, None
                db.close()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _interruptions_once(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's handler of errors nobody awaited: all but a Ctrl-C go to asyncio's own.

    A Ctrl-C (or SIGTERM) raised inside a task is the run's interruption, which
    pytest reports; the tasks it passed through (a step, its ``wait_for``, a
    ``gather``) would each print it again at exit as "never retrieved".
    """
    if isinstance(context.get("exception"), KeyboardInterrupt):
        return
    loop.default_exception_handler(context)


__all__ = ["Harness", "HarnessError"]
