"""The FastAPI app: lifespan (database pool, provider client), routes, error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from harness.reference import chat, messages, sessions, store, streaming, variants
from harness.reference.errors import ApiError, ApiJSONResponse, install_error_handlers
from harness.reference.mutants import build_strategies
from harness.reference.provider import UpstreamClient
from harness.reference.runtime import Runtime, runtime
from harness.reference.settings import Settings

log = logging.getLogger("harness.reference")

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10


async def _configure(conn: AsyncConnection[Any]) -> None:
    # Timestamps come back in UTC whatever the server's TimeZone setting is.
    await conn.execute("SET TIME ZONE 'UTC'")


def create_app(
    settings: Settings, *, provider_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The reference backend.

    `provider_transport` injects a mocked provider (respx router, httpx.MockTransport).
    """
    strategies = variants.apply_strategies(build_strategies(settings.mutants), settings.variants)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            settings.database_url,
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            open=False,
            kwargs={"autocommit": True},
            configure=_configure,
            # A connection that died with a database restart is replaced
            # before it is handed out, instead of failing a request.
            check=AsyncConnectionPool.check_connection,
            timeout=settings.database_timeout_ms / 1000,
            name="chat-harness-reference",
        )
        # wait=False: start serving at once even if the database is still
        # coming up; requests wait (up to the timeout) for a connection.
        await pool.open(wait=False)
        # No httpx timeout: UpstreamClient enforces PROVIDER_TIMEOUT_MS per attempt itself.
        http = httpx.AsyncClient(transport=provider_transport, timeout=None)
        provider = UpstreamClient(
            http,
            url=settings.completions_url,
            api_key=settings.provider_api_key,
            timeout_ms=settings.provider_timeout_ms,
            mapper=strategies.map_provider_status,
            retry_after=strategies.retry_after,
            should_retry=strategies.should_retry,
            pause_s=strategies.provider_pause_s,
            backoff_s=strategies.retry_backoff_s,
            shape_request=strategies.provider_request,
        )
        app.state.runtime = Runtime(settings, strategies, pool, provider)
        try:
            yield
        finally:
            app.state.runtime = None
            await http.aclose()
            await pool.close()

    app = FastAPI(
        title="chat-harness reference backend",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        default_response_class=ApiJSONResponse,
        # "/api/chat/" is an unknown route (404), not a redirect to "/api/chat".
        redirect_slashes=False,
    )
    # Settings are there before the lifespan runs: auth needs only the secret.
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app, strategies.http_errors, strategies.new_request_id,
                           strategies.internal_error)
    # Outermost: the variants' answers include every error envelope.
    variants.install(app, settings.variants)
    app.include_router(chat.router)
    app.include_router(streaming.router)
    app.include_router(messages.router)
    app.include_router(sessions.router)

    @app.get("/api/health")
    async def health(request: Request) -> JSONResponse:
        """C-RUN-2: 200 once the backend can serve, which includes reaching its database."""
        rt = runtime(request)
        try:
            async with rt.pool.connection() as conn:
                await store.ping(conn)
        except Exception as exc:
            log.warning("health check failed: %s: %s", type(exc).__name__, exc)
            raise ApiError("service_unavailable", "The database is unavailable.") from None
        return ApiJSONResponse({"status": "ok"})

    return app
