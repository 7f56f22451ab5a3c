"""The reference backend in-process: ASGI transport in, respx transport out.

Fast and hermetic; the black-box modes run the same scenarios over sockets.
What the backend logs goes to a file of its own (``reports/target.log``, as a
black-box backend's output does), not to the test run's output: a failure
shows the end of it where it may explain the failure.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx

from harness.db import Database
from harness.provider import ScriptedProvider
from harness.provider.inprocess import BASE_URL, transport
from harness.targets._base import Target

LOGGER = "harness.reference"


class _OnlyTo(logging.Filter):
    """A logger filter that hands each record to one handler and stops it there: no
    other handler sees it (pytest's log capture hooks into every logger)."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        self.handler.handle(record)
        return False


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep the reference's tracebacks of a 500 off the terminal: the checks report it."""
    logger = logging.getLogger(LOGGER)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def logging_to(log: Path | None) -> Iterator[None]:
    """The reference's log records go to ``log`` (emptied first) and nowhere else."""
    if log is None:
        yield
        return
    logger = logging.getLogger(LOGGER)
    log.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    only = _OnlyTo(handler)
    logger.addFilter(only)
    try:
        yield
    finally:
        logger.removeFilter(only)
        handler.close()


@contextlib.asynccontextmanager
async def reference(
    db: Database, *, jwt_secret: str, mutants: frozenset[str], provider_timeout_ms: int,
    variants: frozenset[str] = frozenset(),
    log: Path | None = None,
) -> AsyncIterator[Target]:
    """The reference on ``db``; with ``log``, what it logs goes to that file only."""
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
    with logging_to(log):
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://reference.chat-harness",
        ) as client:
            label = "reference" + "".join(f" --mutant {m}" for m in sorted(mutants)) + "".join(
                f" --variant {v}" for v in sorted(variants))
            yield Target(
                name=label, client=client, provider=engine,
                provider_timeout_ms=provider_timeout_ms,
                description="in-process (ASGI + respx)" + (f", log {log}" if log else ""),
                log=str(log) if log else None,
            )
