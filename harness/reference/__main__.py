"""`python -m harness.reference`: serve the reference backend with uvicorn (C-RUN-1).

Settings come from the environment; PORT (default 8000) and HOST (default
127.0.0.1) choose where to listen. uvicorn handles SIGTERM and SIGINT: it
stops accepting, finishes the lifespan shutdown (closing the pool), and exits.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

import uvicorn

from harness.reference import variants
from harness.reference.app import create_app
from harness.reference.settings import Settings


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env(os.environ)
        port = int(os.environ.get("PORT", "8000"))
    except ValueError as exc:
        print(f"chat-harness reference backend: {exc}", file=sys.stderr)
        return 2
    # uvicorn captures SIGTERM/SIGINT, shuts down gracefully, then restores the
    # previous handlers and re-raises the signal, which would end the process
    # as "killed by SIGTERM". These handlers make that last step an exit 0 (and
    # also cover a signal that arrives before uvicorn has installed its own).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    uvicorn.run(
        create_app(settings),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=port,
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        # Do not let an open stream hold a shutdown for long.
        timeout_graceful_shutdown=5,
        **variants.server_options(settings.variants),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
