"""``db``: query the harness's PostgreSQL; ``expect.rows`` / ``row_count`` judge the rows."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from harness.contract import oracle
from harness.errors import ScenarioError, Skip
from harness.scenario import template
from harness.scenario.match import short
from harness.scenario.model import DbStep
from harness.scenario.steps.kind import StepKind, capture

if TYPE_CHECKING:
    from harness.scenario.view import StepRun


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return oracle.format_ts(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


async def db(run: StepRun, index: int, step: DbStep) -> None:
    if run.db is None:
        raise Skip("needs database access (give --db-url to run DB-level checks)")
    where = run.scenario.location(index)
    params = template.render(list(step.params), run.variables, location=where,
                             key=f"steps[{index}].params")
    sql = str(template.render(step.db, run.variables, location=where, key=f"steps[{index}].db"))
    import psycopg

    try:  # in a thread: the other requests of a parallel group go on meanwhile
        found = await asyncio.to_thread(run.db.query, sql, params or None)
        rows = [{k: _plain(v) for k, v in r.items()} for r in found]
    except psycopg.Error as exc:
        raise ScenarioError(f"the query failed: {str(exc).strip()}", location=where,
                            key=f"steps[{index}].db",
                            hint="the tables are chat_sessions and chat_messages "
                            "(fixtures/schema.sql)") from None
    run.judge_rows(index, step, rows)
    capture(run, index, step, {"response": rows, "rows": rows})


KINDS = (StepKind("db", DbStep, db, title=lambda step: f"db {short(step.db, 50)}",
                  pins=lambda step: "it queries the database", parallel=True),)
