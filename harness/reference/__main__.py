"""`python -m harness.reference`: serve the reference backend with uvicorn (C-RUN-1).

Settings come from the environment; PORT (default 8000) and HOST (default
127.0.0.1) choose where to listen. uvicorn handles SIGTERM and SIGINT: it
stops accepting, finishes the lifespan shutdown (closing the pool), and exits.
"""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from harness.reference.app import create_app
from harness.reference.settings import Settings


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
    uvicorn.run(
        create_app(settings),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=port,
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        # Do not let an open stream hold a shutdown for long.
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
