"""The reference backend in-process: ASGI transport in, respx transport out.

Fast and hermetic; the black-box modes run the same scenarios over sockets.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from harness.db import Database
from harness.provider import ScriptedProvider
from harness.provider.inprocess import BASE_URL, transport
from harness.targets._base import Target


@contextlib.asynccontextmanager
async def reference(
    db: Database, *, jwt_secret: str, mutants: frozenset[str], provider_timeout_ms: int,
    variants: frozenset[str] = frozenset(),
) -> AsyncIterator[Target]:
    from harness.reference import Settings, create_app

    engine = ScriptedProvider()
    settings = Settings(
        database_url=db.url,
        provider_base_url=BASE_URL,
        provider_api_key=Target.provider_api_key,
        jwt_secret=jwt_secret,
        provider_timeout_ms=provider_timeout_ms,
        mutants=mutants,
        variants=variants,
    )
    app = create_app(settings, provider_transport=transport(engine, BASE_URL))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://reference.chat-harness"
    ) as client:
        label = "reference" + "".join(f" --mutant {m}" for m in sorted(mutants)) + "".join(
            f" --variant {v}" for v in sorted(variants))
        yield Target(
            name=label, client=client, provider=engine,
            provider_timeout_ms=provider_timeout_ms, description="in-process (ASGI + respx)",
        )
