"""What a request handler needs at run time, opened and closed by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from harness.reference.errors import ApiError
from harness.reference.mutants import Strategies
from harness.reference.provider import UpstreamClient
from harness.reference.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    strategies: Strategies
    pool: AsyncConnectionPool[Any]
    provider: UpstreamClient


def runtime(request: Request) -> Runtime:
    """The Runtime of the app serving `request`.

    Kept on `app.state`, not in the lifespan's yielded state: the harness enters
    `app.router.lifespan_context(app)` itself, and state yielded that way never
    reaches requests.
    """
    found = getattr(request.app.state, "runtime", None)
    if found is None:
        raise ApiError(
            "service_unavailable",
            "The backend is not started.",
            details="Enter the app's lifespan before sending requests.",
        )
    return found
