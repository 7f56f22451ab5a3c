"""The in-process adapter: the scripted engine behind a respx router.

The router is injected into the backend as its httpx transport
(``httpx.MockTransport(router.async_handler)``), never patched in, so the
harness's own HTTP calls are untouched and two engines can run side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import respx

from harness.provider.engine import Outgoing, ScriptedProvider

BASE_URL = "http://provider.chat-harness.invalid/api/v1"


async def _drip(out: Outgoing) -> AsyncIterator[bytes]:
    for wait, data in out.chunks or ():
        if wait:
            await asyncio.sleep(wait)  # the scripted gap between chunks
        yield data
    if out.cut:
        raise httpx.RemoteProtocolError("chat-harness: provider connection cut (scripted)")


def transport(engine: ScriptedProvider, base_url: str = BASE_URL) -> httpx.AsyncBaseTransport:
    """An httpx transport that answers every provider call from ``engine``."""
    router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True, base_url=base_url)

    async def answer(request: httpx.Request) -> httpx.Response:
        out = engine.handle(
            request.method, request.url.path, dict(request.headers), request.content
        )
        if out.delay_s:
            await asyncio.sleep(out.delay_s)  # the provider's latency, as scripted
        if out.chunks is None:
            return httpx.Response(out.status, headers=out.headers, content=out.body)
        return httpx.Response(out.status, headers=out.headers, content=_drip(out))

    router.route(name="provider").mock(side_effect=answer)
    return httpx.MockTransport(router.async_handler)
